"""`streamrules produce` validates and keys events; `streamrules tail` prints decisions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from streamrules.config import Settings
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import KafkaProducerClient
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import cli, read_topic, topic_flags

ORDER = (
    b'{"type":"order_placed","order_id":"o-1","customer_id":"c-7","logged_in":true,'
    b'"items":[{"sku":"A-1","qty":2,"price":12.5}],"ts":"2026-11-27T10:00:00Z"}'
)
INCIDENT = (
    b'{"type":"incident_opened","incident_id":"i-1","service":"payments","severity":1,'
    b'"ts":"2026-11-27T10:00:01Z"}'
)


def test_produce_sends_valid_lines_keyed_and_reports_bad_ones(
    kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    names = kafka_topics("orders", "incidents", "decisions.dlq", partitions=2)
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"\n".join([ORDER, b"{not json", INCIDENT, b"", b'{"type":"order_placed"}']) + b"\n"
    )
    done = cli("produce", str(src), *topic_flags(kafka_bootstrap, names))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert "line 2: invalid_json" in err
    assert "line 5: schema" in err
    assert "sent 2 records" in err and "2 invalid lines" in err
    orders = read_topic(kafka_bootstrap, names["orders"])
    incidents = read_topic(kafka_bootstrap, names["incidents"])
    assert [(r.key, r.value) for r in orders] == [(b"c-7", ORDER)]
    assert [(r.key, r.value) for r in incidents] == [(b"payments", INCIDENT)]
    # The record timestamp is the event time.
    assert orders[0].timestamp_ms == 1_795_773_600_000
    assert read_topic(kafka_bootstrap, names["decisions.dlq"], idle_s=1) == []


def test_produce_dead_letters_option_and_stdin(
    kafka_bootstrap: str, kafka_topics: TopicFactory
) -> None:
    names = kafka_topics("orders", "incidents", "decisions.dlq")
    done = cli(
        "produce",
        "--dead-letters",
        *topic_flags(kafka_bootstrap, names),
        stdin=ORDER + b"\n[1,2]\n",
    )
    # Every line went where it was asked to: the invalid one to the dead-letter topic.
    assert done.returncode == 0, done.stderr.decode()
    assert "1 invalid lines (invalid_json 1) sent to the dead-letter topic" in done.stderr.decode()
    dead = read_topic(kafka_bootstrap, names["decisions.dlq"])
    assert [r.value for r in dead] == [b"[1,2]"]
    assert dead[0].header("reason") == b"invalid_json"
    assert dead[0].header("source.offset") == b"2"


def test_tail_filters_rules_and_stops(kafka_bootstrap: str, kafka_topics: TopicFactory) -> None:
    names = kafka_topics("decisions")
    decisions: list[dict[str, Any]] = [
        {
            "decision_id": f"d{i}",
            "rule": "discount" if i % 2 else "incident_storm",
            "key": "k",
            "event_time": "2026-11-27T10:00:00Z",
            "payload": {},
            "facts": [],
        }
        for i in range(6)
    ]

    async def put() -> None:
        async with KafkaProducerClient(Settings(bootstrap_servers=kafka_bootstrap)) as p:
            for d in decisions:
                rec = OutRecord(
                    names["decisions"], b"k", orjson.dumps(d), (("rule", d["rule"].encode()),)
                )
                await (await p.send(rec))

    asyncio.run(put())
    flags = ["--bootstrap-servers", kafka_bootstrap, "--decisions-topic", names["decisions"]]
    done = cli("tail", *flags, "--from-beginning", "--timeout", "3", "--rule", "discount")
    assert done.returncode == 0, done.stderr.decode()
    got = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [d["decision_id"] for d in got] == ["d1", "d3", "d5"]
    done = cli("tail", *flags, "--from-beginning", "--max", "2")
    assert [orjson.loads(x)["decision_id"] for x in done.stdout.splitlines()] == ["d0", "d1"]
    # Not from the beginning: only what comes after it started (nothing here).
    done = cli("tail", *flags, "--timeout", "2")
    assert done.returncode == 0 and done.stdout == b""


def test_tail_unknown_topic_is_one_line(kafka_bootstrap: str) -> None:
    done = cli(
        "tail",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--decisions-topic",
        "no-such-topic-x",
        "--timeout",
        "2",
    )
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert lines[-1].startswith("streamrules tail: error: topic 'no-such-topic-x' does not exist")
