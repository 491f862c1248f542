"""Stop the processor with SIGTERM as soon as it has published something, send the rest
of the stream while it is down, and start it again: it exits 0 after
committing, rebuilds working memory on restart, and no decision is lost (nor, after a
clean stop, published twice). With --exactly-once, read-committed consumers see each
decision exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from streamrules.config import Settings
from streamrules.generate import generate_events
from streamrules.transport.kafka import record_counts
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli,
    cli_cmd,
    merged_lines,
    produce_flags,
    read_topic,
    replay,
    topic_flags,
    write_events,
)


def _count(bootstrap: str, topic: str) -> int:
    async def go() -> int:
        counts = await record_counts(Settings(bootstrap_servers=bootstrap), [topic])
        return counts[topic]

    return asyncio.run(go())


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_sigterm_mid_stream_then_restart_loses_nothing(
    mode: str, kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    flags = topic_flags(kafka_bootstrap, names)
    run_flags = [*flags, "--group-id", f"g-{names['orders']}", "--batch-size", "50"]
    if mode == "exactly-once":
        run_flags.append("--exactly-once")
    items = list(generate_events(21, days=1.0, orders_per_hour=400))
    half = len(items) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_events(first, items[:half])
    write_events(second, items[half:])
    assert cli("produce", str(first), *produce_flags(kafka_bootstrap, names)).returncode == 0

    proc = subprocess.Popen(
        cli_cmd("run", *run_flags, "--log-format", "json"),
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Stop it as soon as it has published something (counting uncommitted records too).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if _count(kafka_bootstrap, names["decisions"]):
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"stop requested" in err
    for line in err.splitlines():
        orjson.loads(line)  # --log-format json: one JSON object per line
    before = len(read_topic(kafka_bootstrap, names["decisions"], idle_s=1))

    # The rest of the stream arrives while it is down.
    assert cli("produce", str(second), *produce_flags(kafka_bootstrap, names)).returncode == 0
    again = cli("run", *run_flags, "--stop-when-idle", "3")
    assert again.returncode == 0, again.stderr.decode()[-2000:]

    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    expected = [d["decision_id"] for d in replay(tmp_path, merged_lines(inputs))]
    got = [
        orjson.loads(r.value)["decision_id"]
        for r in read_topic(kafka_bootstrap, names["decisions"])
    ]
    assert 0 < before < len(expected), "the stop should come mid-stream"
    assert set(got) == set(expected), "no decision lost"
    # A clean stop committed everything it published: nothing twice, in either mode.
    assert len(got) == len(set(got))
    assert got == expected


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_kill_mid_stream_then_restart(
    mode: str, kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    """SIGKILL (a crash): at-least-once loses nothing but may repeat decisions; with
    exactly-once, read-committed consumers see every decision exactly once, in order."""
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    flags = topic_flags(kafka_bootstrap, names)
    run_flags = [*flags, "--group-id", f"g-{names['orders']}", "--batch-size", "50"]
    if mode == "exactly-once":
        run_flags.append("--exactly-once")
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(22, days=1.0, orders_per_hour=400))
    assert cli("produce", str(events), *produce_flags(kafka_bootstrap, names)).returncode == 0

    proc = subprocess.Popen(
        cli_cmd("run", *run_flags), cwd=ROOT, env=clean_env(), stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _count(kafka_bootstrap, names["decisions"]):
            assert proc.poll() is None
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    before = len(read_topic(kafka_bootstrap, names["decisions"], idle_s=1))

    # The restarted member waits for the dead one's session to time out, then rebuilds.
    again = cli("run", *run_flags, "--stop-when-idle", "3")
    assert again.returncode == 0, again.stderr.decode()[-2000:]

    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    expected = [d["decision_id"] for d in replay(tmp_path, merged_lines(inputs))]
    got = [
        orjson.loads(r.value)["decision_id"]
        for r in read_topic(kafka_bootstrap, names["decisions"])
    ]
    assert before < len(expected), "the crash should come mid-stream"
    assert set(got) == set(expected), "no decision lost"
    if mode == "exactly-once":
        assert got == expected


def test_a_restart_after_a_week_re_reads_what_is_live(
    kafka_bootstrap: str, kafka_topics: TopicFactory, tmp_path: Path
) -> None:
    """Seven simulated days on the topics, then a restart: the rebuild re-reads the last
    hour of orders (plus the allowed lateness) and the incidents of the last 30 days,
    not the week, and the decisions still equal replay's."""
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=1)
    flags = topic_flags(kafka_bootstrap, names)
    run_flags = [*flags, "--group-id", f"g-{names['orders']}"]
    items = list(generate_events(24, days=7.0, orders_per_hour=100))
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_events(first, items[:-200])
    write_events(second, items[-200:])
    assert cli("produce", str(first), *produce_flags(kafka_bootstrap, names)).returncode == 0
    ran = cli("run", *run_flags, "--stop-when-idle", "3")
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]

    orders = read_topic(kafka_bootstrap, names["orders"])
    incidents = read_topic(kafka_bootstrap, names["incidents"])
    newest = max(orders[-1].timestamp_ms, incidents[-1].timestamp_ms)
    since = newest - Settings().orders_horizon_ms - Settings().allowed_lateness_ms
    live_from = next(i for i, r in enumerate(orders) if r.timestamp_ms >= since)
    expected_reread = len(orders) - live_from + len(incidents)  # incidents: all, < 30 days

    assert cli("produce", str(second), *produce_flags(kafka_bootstrap, names)).returncode == 0
    again = cli("run", *run_flags, "--stop-when-idle", "3", "--log-format", "json")
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    rebuilt = [
        rec
        for line in again.stderr.splitlines()
        if (rec := orjson.loads(line))["message"].startswith("rebuilding working memory")
    ]
    assert len(rebuilt) == 1
    assert (
        rebuilt[0]["message"] == f"rebuilding working memory: re-reading {expected_reread} records"
    )
    assert expected_reread < len(orders) / 50, "an hour of a week"

    inputs = read_topic(kafka_bootstrap, names["orders"]) + read_topic(
        kafka_bootstrap, names["incidents"]
    )
    expected = [d["decision_id"] for d in replay(tmp_path, merged_lines(inputs))]
    got = [
        orjson.loads(r.value)["decision_id"]
        for r in read_topic(kafka_bootstrap, names["decisions"])
    ]
    assert got == expected
