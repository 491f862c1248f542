"""The Faust runtime on a real broker: `streamrules run --runtime faust` on a live feed
publishes what `streamrules replay` decides on the same events (same decision ids, no dead
letter the input does not call for); a worker killed with -9 mid-stream and started again
loses nothing; two workers where one leaves equal replay, payments_hold included (global
incidents); two workers on incidents alone publish each decision once; `--metrics-port`
serves `run`'s series and probes; and the guide's example of rules embedded in an
existing Faust app runs as written.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from streamrules.codec import parse_rfc3339
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_live import (
    Service,
    count,
    expected_run,
    finish_feed,
    live_items,
    published,
    start_feed,
)
from tests.integration.test_service_support import ROOT, clean_env, cli, read_topic, topic_flags

pytest.importorskip("faust", reason="the faust extra (faust-streaming) is not installed")

FAUST_PAGE = ROOT / "docs" / "readme" / "faust.md"


def _faust_flags(bootstrap: str, names: dict[str, str]) -> list[str]:
    return [
        "--runtime",
        "faust",
        *topic_flags(bootstrap, names),
        "--group-id",
        f"g-{names['orders']}",
    ]


WorkerFactory = Callable[..., Service]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    """``worker(flags, name=...)``: `streamrules run --runtime faust ...` as a subprocess
    (Faust's log lines are text: Service.lines() keeps each as a RAW record, which
    wait_for_log searches). Any still running after the test are killed, also when it
    failed: a worker left on deleted topics would spin on errors."""
    started: list[Service] = []

    def make(flags: list[str], name: str = "faust") -> Service:
        service = Service(tmp_path, flags, name=name)
        started.append(service)
        return service

    yield make
    for service in started:
        if service.proc.poll() is None:
            service.kill()


def test_live_feed_through_the_faust_runtime_equals_replay(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path, worker: WorkerFactory
) -> None:
    names = contract_topics
    items = live_items(41, names, hours=6)
    service = worker([*_faust_flags(kafka_bootstrap, names), "--stop-when-idle", "6"])
    service.wait_for_log("working memory rebuilt", timeout=180)
    finish_feed(start_feed(tmp_path, kafka_bootstrap, items, 2000))
    assert service.wait() == 0, service.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert want_dead == [] and got_dead == []
    assert len(got_ids) == len(set(got_ids)), "a clean run publishes each decision once"
    assert sorted(got_ids) == sorted(want_ids)
    # The records themselves are the plain runtime's: key, headers, value, and the
    # decision's event time as the record timestamp.
    for record in read_topic(kafka_bootstrap, names["decisions"])[:200]:
        decision = orjson.loads(record.value)
        assert record.key == decision["key"].encode()
        assert record.header("rule") == decision["rule"].encode()
        assert record.header("decision_id") == decision["decision_id"].encode()
        assert record.timestamp_ms == parse_rfc3339(decision["event_time"])[1]


def test_kill_9_mid_stream_then_restart_loses_nothing(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path, worker: WorkerFactory
) -> None:
    names = contract_topics
    items = live_items(42, names, hours=6)
    flags = [*_faust_flags(kafka_bootstrap, names), "--batch-size", "100"]
    feed = start_feed(tmp_path, kafka_bootstrap, items, 300)
    service = worker(flags)
    service.wait_for_log("working memory rebuilt", timeout=180)
    # Killed once it has published something, with the feed still writing.
    deadline = time.monotonic() + 120
    while count(kafka_bootstrap, names["decisions"]) == 0:
        assert time.monotonic() < deadline and service.proc.poll() is None, service.tail()
        time.sleep(0.1)
    time.sleep(1.0)
    service.kill()
    assert feed.poll() is None, "the kill must come mid-stream"
    before = count(kafka_bootstrap, names["decisions"])

    again = worker([*flags, "--stop-when-idle", "6"])
    finish_feed(feed)
    assert again.wait() == 0, again.tail()
    # The restart rebuilt working memory from what the killed worker had committed.
    reread = re.search(r"re-reading (\d+) records", again.log_path.read_text(errors="replace"))
    assert reread is not None and int(reread.group(1)) > 0, again.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert 0 < before < len(want_ids)
    assert want_dead == [] and got_dead == []
    assert set(got_ids) == set(want_ids), "no decision lost"
    assert set(got_ids) <= set(want_ids), "nothing replay would not decide"


def _by_rule(bootstrap: str, names: dict[str, str]) -> Counter[str]:
    return Counter(
        str(orjson.loads(r.value)["rule"]) for r in read_topic(bootstrap, names["decisions"])
    )


def test_two_workers_one_leaves_equal_replay_payments_hold_included(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path, worker: WorkerFactory
) -> None:
    """Both packs, with payments outages: each worker reads every incidents partition
    (global incidents), so payments_hold is right whichever worker holds the order, and
    decisions on incidents alone are published by the owner of their partition. One
    worker, then two, then the first leaves with SIGTERM: the union is replay's, and
    nothing is published twice. At-least-once repeats only what a kill -9 leaves
    uncommitted; a join and a clean leave commit each batch with its frontier before the
    partitions move, and the next owner skips what the frontier says was published (the
    mutation that ignores frontiers publishes about 1,200 decisions twice here)."""
    names = contract_topics
    # Seed 42: payments outages while two workers run, escalations too.
    items = live_items(42, names, hours=8)
    flags = [*_faust_flags(kafka_bootstrap, names), "--batch-size", "100"]
    rate = 150
    feed_s = len(items) / rate
    first = worker(flags, name="first")
    first.wait_for_log("working memory rebuilt", timeout=180)
    feed = start_feed(tmp_path, kafka_bootstrap, items, rate)
    time.sleep(feed_s / 4)
    second = worker([*flags, "--stop-when-idle", "8"], name="second")
    # The second joins: both rebuild for their share of the partitions.
    second.wait_for_log("working memory rebuilt", timeout=180)
    time.sleep(feed_s / 4)
    first.proc.send_signal(signal.SIGTERM)
    assert first.wait(120) == 0, first.tail()
    assert feed.poll() is None, "the leave must come mid-stream"
    finish_feed(feed)
    assert second.wait() == 0, second.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert want_dead == [] and got_dead == []
    by_rule = _by_rule(kafka_bootstrap, names)
    assert by_rule["payments_hold"] > 0 and by_rule["incident_escalation"] > 0, by_rule
    lost, extra = set(want_ids) - set(got_ids), set(got_ids) - set(want_ids)
    assert not lost and not extra, f"lost {len(lost)}, extra {len(extra)}"
    twice = [i for i, n in Counter(got_ids).items() if n > 1]
    assert not twice, f"{len(twice)} published twice or more"


def test_two_workers_on_incidents_alone_publish_each_decision_once(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path, worker: WorkerFactory
) -> None:
    """Incidents only, two workers from the start: both fire every escalation, storm and
    budget burn (every worker reads every incidents partition); the owner of the
    incidents partition the service hashes to publishes it, so each decision once."""
    names = contract_topics
    items = [it for it in live_items(45, names, hours=24) if it[0] == names["incidents"]]
    flags = [*_faust_flags(kafka_bootstrap, names), "--stop-when-idle", "6"]
    one = worker(flags, name="one")
    two = worker(flags, name="two")
    # Faust's assignor gives each worker partitions once both joined (the first
    # assignment, before the second joined, is revoked again).
    for w in (one, two):
        w.wait_for_log("working memory rebuilt", timeout=180)
    deadline = time.monotonic() + 120
    while not all(_owns_partitions(w) for w in (one, two)):
        assert time.monotonic() < deadline, one.tail() + two.tail()
        time.sleep(0.5)
    finish_feed(start_feed(tmp_path, kafka_bootstrap, items, 2000))
    assert one.wait() == 0, one.tail()
    assert two.wait() == 0, two.tail()

    want_ids, _ = expected_run(tmp_path, kafka_bootstrap, names)
    got_ids, got_dead = published(kafka_bootstrap, names)
    assert got_dead == []
    assert len(want_ids) > 0
    assert sorted(got_ids) == sorted(want_ids)


def _owns_partitions(service: Service) -> bool:
    """Whether the last assignment the worker logged gave it a partition."""
    text = service.log_path.read_text(errors="replace")
    found = re.findall(r"partitions assigned: (.*)", text)
    return bool(found) and found[-1].strip() != "(none)"


def _scrape(port: int) -> dict[str, float]:
    """/metrics as {series name with labels: value} (0 when not listening yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = float(sample.value)
    return out


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def _total(series: dict[str, float], name: str) -> float:
    return sum(v for k, v in series.items() if k.startswith(name + "{"))


def test_the_faust_runtime_serves_metrics_and_probes(
    kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path, worker: WorkerFactory
) -> None:
    """`--metrics-port` on the Faust runtime: `run`'s series (records in, decoded,
    decisions by rule, latency, watermarks, lag, rebuilds) and probes on one port."""
    names = contract_topics
    items = live_items(46, names, hours=3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    flags = [*_faust_flags(kafka_bootstrap, names), "--metrics-port", str(port)]
    service = worker(flags)
    service.wait_for_log("working memory rebuilt", timeout=180)
    deadline = time.monotonic() + 60
    while _status(port, "/readyz") != 200:
        assert time.monotonic() < deadline and service.proc.poll() is None, service.tail()
        time.sleep(0.2)
    finish_feed(start_feed(tmp_path, kafka_bootstrap, items, 3000))
    want_ids, _ = expected_run(tmp_path, kafka_bootstrap, names)
    deadline = time.monotonic() + 120
    while True:
        series = _scrape(port)
        if _total(series, "streamrules_decisions_total") >= len(want_ids):
            break
        assert time.monotonic() < deadline and service.proc.poll() is None, service.tail()
        time.sleep(0.5)
    assert _status(port, "/healthz") == 200
    by_rule = Counter(
        str(orjson.loads(r.value)["rule"]) for r in read_topic(kafka_bootstrap, names["decisions"])
    )
    for rule, n in by_rule.items():
        assert series[f"streamrules_decisions_total{{rule={rule}}}"] == n
    assert _total(series, "streamrules_records_in_total") == len(items)
    assert series["streamrules_events_decoded_total{}"] == len(items)
    assert series["streamrules_decision_latency_seconds_count{}"] == len(want_ids)
    assert series["streamrules_rebuilds_total{}"] >= 1
    assert series["streamrules_watermark_timestamp_seconds{}"] > 0
    lags = {k: v for k, v in series.items() if k.startswith("streamrules_consumer_lag{")}
    assert lags and all(v == 0 for v in lags.values()), lags
    service.proc.send_signal(signal.SIGTERM)
    assert service.wait(120) == 0, service.tail()


def _example_code() -> str:
    page = FAUST_PAGE.read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(# shop\.py.*?)```", page, flags=re.S)
    return str(code)


def test_the_guides_embedding_example_runs(
    kafka_bootstrap: str,
    contract_topics: dict[str, str],
    kafka_topics: TopicFactory,
    tmp_path: Path,
) -> None:
    names = contract_topics
    (alerts,) = kafka_topics("payments-alerts").values()
    (tmp_path / "shop.py").write_text(_example_code(), encoding="utf-8")
    env = clean_env(
        {
            "STREAMRULES_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "STREAMRULES_ORDERS_TOPIC": names["orders"],
            "STREAMRULES_INCIDENTS_TOPIC": names["incidents"],
            "STREAMRULES_DECISIONS_TOPIC": names["decisions"],
            "STREAMRULES_DLQ_TOPIC": names["decisions.dlq"],
            "STREAMRULES_GROUP_ID": f"g-{names['orders']}",
            "SHOP_ALERTS_TOPIC": alerts,
            "PYTHONPATH": str(ROOT),
        }
    )
    log_path = tmp_path / "shop.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "shop", "worker", "-l", "info"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        items = live_items(44, names, hours=4)
        finish_feed(start_feed(tmp_path, kafka_bootstrap, items, 3000))
        want_ids, _ = expected_run(tmp_path, kafka_bootstrap, names)
        holds = _payments_holds(tmp_path)
        assert holds > 0
        deadline = time.monotonic() + 240
        while (
            count(kafka_bootstrap, names["decisions"]) < len(want_ids)
            or count(kafka_bootstrap, alerts) < holds
        ):
            assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    got_ids, _ = published(kafka_bootstrap, names)
    assert sorted(got_ids) == sorted(want_ids)
    assert count(kafka_bootstrap, alerts) == holds


def _payments_holds(tmp: Path) -> int:
    """The payments_hold decisions of replay on the merged input expected_run wrote."""
    merged = tmp / "merged.jsonl"
    done = cli("replay", str(merged))
    assert done.returncode == 0, done.stderr.decode()
    return sum(
        orjson.loads(line)["rule"] == "payments_hold" for line in done.stdout.splitlines() if line
    )


def test_a_missing_topic_stops_the_faust_runtime_at_start(kafka_bootstrap: str) -> None:
    done = cli(
        "run",
        "--runtime",
        "faust",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--orders-topic",
        "no-such-orders-topic",
        # All four absent whatever the broker holds (a shared broker may have the
        # default names): the message lists them.
        "--incidents-topic",
        "no-such-incidents-topic",
        "--decisions-topic",
        "no-such-decisions-topic",
        "--dlq-topic",
        "no-such-dlq-topic",
        timeout=120,
    )
    assert done.returncode == 2
    (line,) = done.stderr.decode().strip().splitlines()
    assert "missing topics no-such-orders-topic" in line
