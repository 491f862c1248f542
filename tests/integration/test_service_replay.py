"""`streamrules run` on a real broker publishes exactly what `streamrules replay` prints for
the same events in the same (merged) order: same ids, same order, same bytes."""

from __future__ import annotations

from pathlib import Path

import orjson

from streamrules.generate import generate_events
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import (
    cli,
    merged_lines,
    produce_flags,
    read_topic,
    replay,
    topic_flags,
    write_events,
)


def test_run_equals_replay_on_single_partition_topics(
    kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    flags = topic_flags(kafka_bootstrap, names)
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(5, days=0.5, orders_per_hour=300))

    produced = cli("produce", str(events), *produce_flags(kafka_bootstrap, names))
    assert produced.returncode == 0, produced.stderr.decode()

    ran = cli("run", *flags, "--group-id", f"g-{names['orders']}", "--stop-when-idle", "3")
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]

    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    expected = replay(tmp_path, merged_lines(inputs))
    published = read_topic(kafka_bootstrap, names["decisions"])
    got = [orjson.loads(r.value) for r in published]
    assert expected, "the stream should cause decisions"
    assert [d["decision_id"] for d in got] == [d["decision_id"] for d in expected]
    assert got == expected
    for r, d in zip(published, got, strict=True):
        assert r.key == d["key"].encode()
        assert r.header("rule") == d["rule"].encode()
        assert r.header("decision_id") == d["decision_id"].encode()


def test_a_second_run_of_the_same_group_publishes_nothing_new(
    kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    flags = [*topic_flags(kafka_bootstrap, names), "--group-id", f"g-{names['orders']}"]
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(6, days=0.2, orders_per_hour=300))
    assert cli("produce", str(events), *produce_flags(kafka_bootstrap, names)).returncode == 0
    assert cli("run", *flags, "--stop-when-idle", "3").returncode == 0
    first = read_topic(kafka_bootstrap, names["decisions"])
    again = cli("run", *flags, "--stop-when-idle", "3")
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert len(read_topic(kafka_bootstrap, names["decisions"])) == len(first)
