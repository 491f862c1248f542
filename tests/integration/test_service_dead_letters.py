"""Malformed, late and unknown records land in the dead-letter topic with their reasons,
source coordinates and original bytes; the processor goes on and loses nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from streamrules.codec import parse_rfc3339
from streamrules.config import Settings
from streamrules.generate import generate_events
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import KafkaProducerClient
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import (
    cli,
    merged_lines,
    read_topic,
    replay,
    replay_dead_reasons,
    topic_flags,
    wrong_topic,
)


def _produce_raw(bootstrap: str, records: list[OutRecord]) -> None:
    async def go() -> None:
        async with KafkaProducerClient(Settings(bootstrap_servers=bootstrap)) as p:
            futures = [await p.send(r) for r in records]
            await asyncio.gather(*futures)

    asyncio.run(go())


def _ts(value: bytes) -> datetime | None:
    try:
        return parse_rfc3339(orjson.loads(value)["ts"])[0]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def test_bad_records_are_dead_lettered_and_nothing_is_lost(
    kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    items = list(generate_events(9, days=0.4, orders_per_hour=300, malformed_ratio=0.03))
    # Records go where a careless producer would put them: malformed ones included, with
    # no validation (that is the processor's job here).
    topic_of = {"orders": names["orders"], "incidents": names["incidents"]}
    records = [OutRecord(topic_of[t], k, v) for t, k, v in items]
    # One of each kind for sure, whatever the generator does, the late one 10 minutes
    # behind the last event.
    last = max(ts for _, _, v in items if (ts := _ts(v)) is not None)
    late_ts = (last - timedelta(minutes=10)).isoformat()
    late = {
        "type": "order_placed",
        "order_id": "o-late",
        "customer_id": "c-1",
        "logged_in": True,
        "items": [{"sku": "A", "qty": 1, "price": 1.0}],
        "ts": late_ts,
    }
    for value in (b"{oops", b'{"type":"order_cancelled"}', orjson.dumps(late)):
        records.append(OutRecord(names["orders"], b"c-1", value))
    records.append(OutRecord(names["incidents"], b"x", b'{"type":"incident_opened"}'))
    _produce_raw(kafka_bootstrap, records)

    ran = cli(
        "run",
        *topic_flags(kafka_bootstrap, names),
        "--group-id",
        f"g-{names['orders']}",
        "--stop-when-idle",
        "3",
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]

    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    by_coord = {(r.topic, r.partition, r.offset): r.value for r in inputs}
    expected = replay(tmp_path, merged_lines(inputs, names))
    misplaced = wrong_topic(inputs, names)
    dead = read_topic(kafka_bootstrap, names["decisions.dlq"])
    reasons = Counter(r.header("reason").decode() for r in dead)  # type: ignore[union-attr]

    assert {"invalid_json", "schema", "unknown_type", "late_event"} <= set(reasons)
    assert misplaced > 0, "the generator sends some events to the wrong topic"
    assert reasons == Counter(replay_dead_reasons(tmp_path)) + Counter({"schema": misplaced})
    for r in dead:
        coord = (
            r.header("source.topic").decode(),  # type: ignore[union-attr]
            int(r.header("source.partition")),  # type: ignore[arg-type]
            int(r.header("source.offset")),  # type: ignore[arg-type]
        )
        assert by_coord[coord] == r.value, "the dead letter carries the original bytes"
        assert r.header("message")
    got = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, names["decisions"])]
    assert got == expected
