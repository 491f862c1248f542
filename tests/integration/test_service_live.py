"""The service on live traffic: a producer in another process writes while `run` runs.

Topics as topics.toml defines them (orders 6 partitions, incidents 3) with keys that leave
partitions empty; the producer writes in event-time order at a fixed rate. The decisions
must equal `streamrules replay` of the merged order, with no dead letter that the input
does not call for (contract section 5: no event is late that is not late in the
producers' own order); kill -9 loses nothing; a backlog is worked off batch by batch.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import murmur2

from streamrules.codec import Decoder, Record
from streamrules.config import Settings
from streamrules.errors import DecodeError
from streamrules.generate import generate_events
from streamrules.transport.kafka import record_counts
from tests.integration.live_feed import Item, write_items
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli_cmd,
    merged_lines,
    read_topic,
    replay,
    replay_dead_reasons,
    topic_flags,
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
    """`streamrules run` as a subprocess, its JSON log in a file (no pipe to fill)."""

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
