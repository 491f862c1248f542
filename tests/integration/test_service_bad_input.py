"""Bad input in a live feed (issue 16): an event from a producer with a wrong clock, a
tombstone and an oversized record are dead letters with their reasons and original bytes,
and none of them stops, poisons or changes the processing of the records around them."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson

from streamrules.config import Settings
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import KafkaProducerClient
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import cli, read_topic, topic_flags


def _order(oid: str, ts: datetime, **extra: object) -> bytes:
    return orjson.dumps(
        {
            "type": "order_placed",
            "order_id": oid,
            "customer_id": "c-1",
            "logged_in": True,
            "items": [{"sku": "A", "qty": 1, "price": 10.0}],
            "ts": ts.isoformat(),
            **extra,
        }
    )


def test_future_event_tombstone_and_oversized_record_in_a_live_feed(
    kafka_bootstrap: str, kafka_topics: TopicFactory
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq")
    # Recent event times, as on a live feed: the service checks them against the wall clock.
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    future = _order("o-future", datetime(3000, 1, 1, tzinfo=UTC))
    oversized = _order("o-big", t0 + timedelta(seconds=2), pad="x" * 5000)
    values: list[bytes | None] = [
        _order("o-1", t0),
        future,
        _order("o-2", t0 + timedelta(seconds=1)),  # not late: the future event moved nothing
        None,  # a tombstone
        oversized,
        _order("o-3", t0 + timedelta(seconds=3)),
    ]

    async def produce() -> None:
        async with KafkaProducerClient(Settings(bootstrap_servers=kafka_bootstrap)) as p:
            for value in values:  # one at a time: offsets in this order
                await (await p.send(OutRecord(names["orders"], b"c-1", value)))  # type: ignore[arg-type]

    asyncio.run(produce())

    ran = cli(
        "run",
        *topic_flags(kafka_bootstrap, names),
        *("--group-id", f"g-{names['orders']}", "--max-record-bytes", "2000"),
        *("--stop-when-idle", "3"),
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]

    decisions = [orjson.loads(r.value) for r in read_topic(kafka_bootstrap, names["decisions"])]
    assert [d["payload"]["order_id"] for d in decisions] == ["o-1", "o-2", "o-3"]
    dead = read_topic(kafka_bootstrap, names["decisions.dlq"])
    by_offset = {int(r.header("source.offset")): r for r in dead}  # type: ignore[arg-type]
    reasons = {off: r.header("reason").decode() for off, r in by_offset.items()}  # type: ignore[union-attr]
    assert reasons == {1: "future_event", 3: "invalid_json", 4: "schema"}
    assert by_offset[1].value == future and by_offset[4].value == oversized  # unchanged
    assert not by_offset[3].value  # a tombstone has no bytes to keep
    messages = {off: r.header("message").decode() for off, r in by_offset.items()}  # type: ignore[union-attr]
    assert "more than max_future_ms (3600000 ms) ahead of the wall clock" in messages[1]
    assert "larger than max_record_bytes (2000 bytes): not decoded" in messages[4]
    assert "tombstone" in messages[3]
    assert Counter(reasons.values()) == Counter({"future_event": 1, "invalid_json": 1, "schema": 1})
