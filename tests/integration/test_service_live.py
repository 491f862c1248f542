"""The service on live traffic: a producer in another process writes while `run` runs.

Topics as topics.toml defines them (orders 6 partitions, incidents 3) with keys that leave
partitions empty; the producer writes in event-time order at a fixed rate. The decisions
must equal `streamrules replay` of the merged order, with no dead letter that the input
does not call for (contract section 5: no event is late that is not late in the
producers' own order); kill -9 loses nothing; a backlog is worked off batch by batch.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import orjson
import pytest
from aiokafka.partitioner import murmur2

from streamrules import build
from streamrules.codec import Decoder, Record, format_ms
from streamrules.config import Settings
from streamrules.errors import DecodeError
from streamrules.generate import generate_events
from streamrules.localkafka import BrokerConfig, LocalKafka, run_sync, with_free_ports
from streamrules.topics import TopicSpec, load_topics
from streamrules.transport import kafka_admin
from streamrules.transport.kafka import record_counts
from tests.integration.live_feed import Item, write_items
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli_cmd,
    merged_lines,
    produce_flags,
    read_topic,
    replay,
    replay_dead_reasons,
    topic_flags,
    wrong_topic,
)

ORDER_PARTITIONS_USED = {0, 1, 3, 4}  # of 6: orders-2 and orders-5 never get a record
INCIDENT_PARTITIONS_USED = {1, 2}  # of 3 (payments is on 2): incidents-0 never gets one


def _partition(key: bytes, partitions: int) -> int:
    """The partition of ``key`` under Kafka's default partitioner (murmur2)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def _ts(value: bytes) -> int | None:
    try:
        return Decoder(None).decode(Record("", 0, 0, None, value)).ts_ms
    except DecodeError:
        return None


def live_items(
    seed: int, names: dict[str, str], *, hours: float, malformed_ratio: float = 0.0
) -> list[Item]:
    """Generated events in event-time order (the producers' order), only for the keys on
    the partitions used (*_PARTITIONS_USED), as (real topic, key, value)."""
    items = []
    for topic, key, value in generate_events(
        seed, days=hours / 24, orders_per_hour=600, malformed_ratio=malformed_ratio
    ):
        used = ORDER_PARTITIONS_USED if topic == "orders" else INCIDENT_PARTITIONS_USED
        if key is not None and _partition(key, 6 if topic == "orders" else 3) not in used:
            continue
        items.append((names[topic], key, value))
    # Sorted by event time (stable); a record without one keeps its neighbour's place.
    last = 0
    keyed = []
    for item in items:
        ts = _ts(item[2])
        last = ts if ts is not None else last
        keyed.append((last, item))
    keyed.sort(key=lambda kv: kv[0])
    return [item for _, item in keyed]


class Service:
    """`streamrules run` as a subprocess, its JSON log in a file (no pipe to fill).

    Every one started is killed after its test if still running (``kill_leftovers``,
    called by an autouse fixture), also when the test failed half-way."""

    started: ClassVar[list[Service]] = []

    def __init__(self, tmp: Path, flags: Sequence[str], name: str = "run") -> None:
        self.log_path = tmp / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cli_cmd("run", *flags, "--log-format", "json"),
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        Service.started.append(self)

    def lines(self) -> list[dict[str, object]]:
        out = []
        for line in self.log_path.read_bytes().splitlines():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                out.append({"level": "RAW", "message": line.decode(errors="replace")})
        return out

    def wait_for_log(self, fragment: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(fragment in str(rec.get("message")) for rec in self.lines()):
                return
            assert self.proc.poll() is None, self.tail()
            time.sleep(0.1)
        raise AssertionError(f"no log line with {fragment!r}: {self.tail()}")

    def tail(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace")[-3000:]

    def wait(self, timeout: float = 300) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(60)


def kill_leftovers() -> None:
    """Kill every ``Service`` still running (after a test)."""
    while Service.started:
        service = Service.started.pop()
        if service.proc.poll() is None:
            service.proc.kill()
            service.proc.wait(60)
        service._log.close()


def group_flags(bootstrap: str, names: dict[str, str], mode: str) -> list[str]:
    """`run`'s flags for a member of the test's group, in batches of 100 records, in
    ``mode`` ("at-least-once" or "exactly-once")."""
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{names['orders']}"]
    flags += ["--batch-size", "100"]
    return [*flags, "--exactly-once"] if mode == "exactly-once" else flags


def start_feed(
    tmp: Path, bootstrap: str, items: list[Item], rate: float
) -> subprocess.Popen[bytes]:
    path = tmp / f"feed-{time.monotonic_ns()}.jsonl"
    write_items(path, items)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.live_feed",
            str(path),
            "--bootstrap-servers",
            bootstrap,
            "--rate",
            str(rate),
        ],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish_feed(feed: subprocess.Popen[bytes], timeout: float = 300) -> None:
    out, err = feed.communicate(timeout=timeout)
    assert feed.returncode == 0, err.decode()[-2000:]
    assert out.startswith(b"sent "), out


def count(bootstrap: str, topic: str) -> int:
    async def go() -> int:
        return (await record_counts(Settings(bootstrap_servers=bootstrap), [topic]))[topic]

    return asyncio.run(go())


def expected_run(tmp: Path, bootstrap: str, names: dict[str, str]) -> tuple[list[str], list[str]]:
    """Replay of the merged order of what is on the input topics: decision ids and
    dead-letter reasons."""
    inputs = read_topic(bootstrap, names["orders"]) + read_topic(bootstrap, names["incidents"])
    ids = [d["decision_id"] for d in replay(tmp, merged_lines(inputs, names))]
    return [str(i) for i in ids], replay_dead_reasons(tmp)


def published(bootstrap: str, names: dict[str, str]) -> tuple[list[str], list[str]]:
    ids = [
        str(orjson.loads(r.value)["decision_id"]) for r in read_topic(bootstrap, names["decisions"])
    ]
    reasons = [
        (r.header("reason") or b"").decode() for r in read_topic(bootstrap, names["decisions.dlq"])
    ]
    return ids, reasons


@pytest.fixture
def live_topics(contract_topics: dict[str, str]) -> Iterator[dict[str, str]]:
    yield contract_topics


@pytest.mark.parametrize("rate", [800, 5000])
def test_live_feed_with_empty_partitions_equals_replay(
    rate: int, kafka_bootstrap: str, live_topics: dict[str, str], tmp_path: Path
) -> None:
    names = live_topics
    items = live_items(31, names, hours=6)
    flags = [*topic_flags(kafka_bootstrap, names), "--group-id", f"g-{names['orders']}"]
    service = Service(tmp_path, [*flags, "--stop-when-idle", "6"])
    service.wait_for_log("rebuilding working memory")
    finish_feed(start_feed(tmp_path, kafka_bootstrap, items, rate))
    assert service.wait() == 0, service.tail()
    # Its first line says which build runs (this process's: the same environment).
    (start,) = [rec for rec in service.lines() if rec.get("message") == "starting"]
    assert start["build"] == build.describe()

    orders = read_topic(kafka_bootstrap, names["orders"])
    incidents = read_topic(kafka_bootstrap, names["incidents"])
    assert {r.partition for r in orders} == ORDER_PARTITIONS_USED
    assert {r.partition for r in incidents} == INCIDENT_PARTITIONS_USED
    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert want_dead == []
    assert Counter(got_dead) == Counter(), "a clean feed in event-time order has no dead letter"
    assert len(got_ids) == len(set(got_ids))
    assert sorted(got_ids) == sorted(want_ids)


def _with_late_events(items: list[Item], names: dict[str, str], every: int) -> list[Item]:
    """Every ``every``-th record is followed by an order 10 minutes older than it: late in
    the producers' own order (allowed lateness 60 s)."""
    out: list[Item] = []
    for i, item in enumerate(items):
        out.append(item)
        ts = _ts(item[2])
        if i % every == every - 1 and ts is not None:
            late = {
                "type": "order_placed",
                "order_id": f"late-{i}",
                "customer_id": "c-late",
                "logged_in": True,
                "items": [{"sku": "A-1", "qty": 1, "price": 10.0}],
                "ts": format_ms(ts - 600_000),
            }
            out.append((names["orders"], b"c-late", orjson.dumps(late)))
    return out


def test_live_feed_with_malformed_and_late_records(
    kafka_bootstrap: str, live_topics: dict[str, str], tmp_path: Path
) -> None:
    names = live_topics
    items = _with_late_events(live_items(32, names, hours=4, malformed_ratio=0.03), names, 150)
    flags = [*topic_flags(kafka_bootstrap, names), "--group-id", f"g-{names['orders']}"]
    service = Service(tmp_path, [*flags, "--stop-when-idle", "6"])
    service.wait_for_log("rebuilding working memory")
    finish_feed(start_feed(tmp_path, kafka_bootstrap, items, 2000))
    assert service.wait() == 0, service.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert Counter(want_dead)["late_event"] >= 5 and Counter(want_dead)["invalid_json"] >= 1
    # Records on the wrong input topic for their type are `schema` dead letters of `run`
    # (replay derives the topic from the type).
    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    want = Counter(want_dead) + Counter({"schema": wrong_topic(inputs, names)})
    assert Counter(got_dead) == want
    assert sorted(got_ids) == sorted(want_ids)


def _decision_order_holds(bootstrap: str, names: dict[str, str], want_ids: list[str]) -> None:
    """Each decisions partition holds its decisions in firing order, each once."""
    per_partition: dict[int, list[str]] = {}
    for r in read_topic(bootstrap, names["decisions"]):
        per_partition.setdefault(r.partition, []).append(str(orjson.loads(r.value)["decision_id"]))
    for ids in per_partition.values():
        wanted = set(ids)
        assert ids == [i for i in want_ids if i in wanted]


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_kill_9_three_times_during_a_live_feed(
    mode: str, kafka_bootstrap: str, live_topics: dict[str, str], tmp_path: Path
) -> None:
    """A crash at three random points while the producer writes: a new instance takes
    over each time. Nothing is lost; exactly-once: nothing twice, in firing order."""
    names = live_topics
    rng = random.Random(f"kill-{mode}")
    items = live_items(33, names, hours=6)
    flags = group_flags(kafka_bootstrap, names, mode)
    feed = start_feed(tmp_path, kafka_bootstrap, items, 150)
    for _ in range(3):
        service = Service(tmp_path, flags)
        service.wait_for_log("rebuilding working memory", timeout=180)
        time.sleep(rng.uniform(0.5, 3.0))
        service.kill()
    finish_feed(feed)
    last = Service(tmp_path, [*flags, "--stop-when-idle", "6"])
    assert last.wait() == 0, last.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert want_dead == []
    assert set(got_ids) == set(want_ids), "no decision lost"
    if mode == "exactly-once":
        assert len(got_ids) == len(want_ids), "no decision twice"
        _decision_order_holds(kafka_bootstrap, names, want_ids)
    assert got_dead == []


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The sum of the group's committed offsets over the partitions of ``topic``."""

    async def go() -> int:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await consumer.start()
        try:
            total = 0
            for p in range(partitions):
                total += await consumer.committed(TopicPartition(topic, p)) or 0
            return total
        finally:
            await consumer.stop()

    return asyncio.run(go())


def test_kill_9_half_way_through_a_backlog_republishes_at_most_a_batch(
    kafka_bootstrap: str, live_topics: dict[str, str], tmp_path: Path
) -> None:
    names = live_topics
    items = [
        (names[t], k, v)
        for t, k, v in generate_events(34, days=7, orders_per_hour=600, incident_rate=0.5)
    ]
    assert len(items) >= 100_000
    events = tmp_path / "backlog.jsonl"
    events.write_bytes(b"".join(v + b"\n" for _, _, v in items))
    flags = topic_flags(kafka_bootstrap, names)
    produced = subprocess.run(
        cli_cmd("produce", str(events), *produce_flags(kafka_bootstrap, names)),
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
    )
    assert produced.returncode in (0, 1), produced.stderr.decode()[-2000:]
    group = f"g-{names['orders']}"
    run_flags = [*flags, "--group-id", group, "--batch-size", "500"]
    want_ids, _ = expected_run(tmp_path, kafka_bootstrap, names)

    service = Service(tmp_path, run_flags)
    commits_seen = 0
    deadline = time.monotonic() + 300
    while count(kafka_bootstrap, names["decisions"]) < len(want_ids) // 2:
        assert time.monotonic() < deadline and service.proc.poll() is None, service.tail()
        commits_seen = max(commits_seen, _committed(kafka_bootstrap, group, names["orders"], 6))
        time.sleep(0.2)
    service.kill()
    assert commits_seen > 0, "offsets are committed batch by batch while the backlog lasts"
    before = count(kafka_bootstrap, names["decisions"])
    assert before < len(want_ids)

    again = Service(tmp_path, [*run_flags, "--stop-when-idle", "6"])
    assert again.wait() == 0, again.tail()
    got_ids, _ = published(kafka_bootstrap, names)
    assert set(got_ids) == set(want_ids), "no decision lost"
    republished = len(got_ids) - len(set(got_ids))
    # One batch is 500 input records, about as many decisions (one discount per order).
    assert republished <= 1000, f"{republished} decisions published twice"


def test_broker_outage_during_a_live_feed_is_a_few_readable_lines(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The broker stops for 30 s while the service runs (on a broker of this test's own):
    nothing is lost, the service says once that the broker is unreachable and once that it
    is back, and the client's connection errors are summarised, not a flood."""
    config = with_free_ports(BrokerConfig(data_dir=tmp_path_factory.mktemp("outage-kafka")))
    broker = LocalKafka(config)
    broker.start()
    try:
        bootstrap = broker.bootstrap_servers
        names = {n: f"outage-{n}" for n in ("orders", "incidents", "decisions", "decisions.dlq")}
        specs = [
            TopicSpec(real, 3 if n != "decisions.dlq" else 1, 1, load_topics().default_configs)
            for n, real in names.items()
        ]
        run_sync(kafka_admin.create_topics(bootstrap, specs))
        items = live_items(35, names, hours=4)
        half = len(items) // 2
        flags = [*topic_flags(bootstrap, names), "--group-id", "g-outage"]
        service = Service(tmp_path, [*flags, "--stop-when-idle", "8"])
        service.wait_for_log("rebuilding working memory")
        finish_feed(start_feed(tmp_path, bootstrap, items[:half], 400))

        broker.stop()
        down_at = len(service.lines())
        time.sleep(30)
        during = service.lines()[down_at:]
        broker = LocalKafka(config)
        broker.start()
        finish_feed(start_feed(tmp_path, bootstrap, items[half:], 400))
        assert service.wait(timeout=240) == 0, service.tail()

        messages = [str(rec.get("message")) for rec in service.lines()]
        assert sum("broker unreachable" in m for m in messages) == 1, messages
        assert sum("broker reachable again" in m for m in messages) == 1, messages
        # 30 s of outage: aiokafka alone logged ~14,000 lines a second before.
        assert len(during) <= 120, f"{len(during)} log lines in 30 s of outage"
        assert not [r for r in service.lines() if r.get("level") in ("ERROR", "CRITICAL")]

        want_ids, want_dead = expected_run(tmp_path, bootstrap, names)
        got_ids, got_dead = published(bootstrap, names)
        assert want_dead == [] and got_dead == []
        assert set(got_ids) == set(want_ids), "nothing lost"
    finally:
        broker.stop()
