"""Six-partition (orders) and three-partition (incidents) topics as topics.toml defines
them, records keyed by `streamrules produce`: every decision arrives, keyed as the
contract says, each output partition in firing order."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import orjson

from streamrules.generate import generate_events
from tests.integration.test_service_support import (
    cli,
    merged_lines,
    produce_flags,
    read_topic,
    replay,
    topic_flags,
    write_events,
)


def test_partitioned_topics_all_decisions_keyed(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path
) -> None:
    names = contract_topics
    flags = topic_flags(kafka_bootstrap, names)
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(13, days=0.5, orders_per_hour=300))
    assert cli("produce", str(events), *produce_flags(kafka_bootstrap, names)).returncode == 0

    orders = read_topic(kafka_bootstrap, names["orders"])
    incidents = read_topic(kafka_bootstrap, names["incidents"])
    assert len({r.partition for r in orders}) == 6
    for r in orders:
        assert r.key == orjson.loads(r.value)["customer_id"].encode()
    for r in incidents:
        assert r.key == orjson.loads(r.value)["service"].encode()

    ran = cli(
        "run",
        *flags,
        "--group-id",
        f"g-{names['orders']}",
        "--idle-ms",
        "2000",
        "--stop-when-idle",
        "4",
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]

    expected = replay(tmp_path, merged_lines(orders + incidents))
    published = read_topic(kafka_bootstrap, names["decisions"])
    got = {orjson.loads(r.value)["decision_id"]: r for r in published}
    assert len(got) == len(published), "no decision twice"
    assert set(got) == {d["decision_id"] for d in expected}
    partition_of_key: dict[bytes | None, int] = {}
    per_partition: dict[int, list[str]] = defaultdict(list)
    for r in published:
        d = orjson.loads(r.value)
        assert r.key == d["key"].encode()
        assert partition_of_key.setdefault(r.key, r.partition) == r.partition
        per_partition[r.partition].append(d["decision_id"])
    order = [d["decision_id"] for d in expected]
    for ids in per_partition.values():
        assert ids == [i for i in order if i in set(ids)], "firing order within a partition"
