"""A real Prometheus (Debian's) scrapes a running `streamrules run`, with the rules of
deploy/prometheus/alerts.yml loaded: the series arrive, agree with what was produced, the
recording rules evaluate over them, and the health probes answer on the same port."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from streamrules.generate import generate_events
from tests.integration.conftest import TopicFactory
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli,
    cli_cmd,
    produce_flags,
    topic_flags,
    write_events,
)

pytestmark = pytest.mark.integration
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamrules.json"
# Grafana's variables, as Grafana would fill them in for a 5-minute view.
GRAFANA_VARIABLES = {"$job": ".+", "$__rate_interval": "1m", "$__range": "5m"}
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus not found (Debian package prometheus; make test installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(what: str, check: Callable[[], T | None], timeout: float = 120) -> T:
    """Poll ``check`` until it returns something truthy (never sleep-and-hope)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            got = check()
        except (OSError, urllib.error.URLError) as exc:  # not listening yet
            last = exc
        else:
            if got:
                return got
            last = got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """Start Prometheus scraping 127.0.0.1:<port> every second; yields the starter."""
    binary = _prometheus_binary()
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        port = _free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": "streamrules",
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        path = tmp_path / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={path}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=log,
            )
        )
        log.close()
        url = f"http://127.0.0.1:{port}"
        _wait("Prometheus ready", lambda: _get(f"{url}/-/ready")[0] == 200, timeout=60)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dashboard_queries() -> Iterator[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    status, body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def _value(url: str, promql: str) -> float | None:
    result = _query(url, promql)
    return float(result[0]["value"][1]) if result else None


# What a running service exports once it processed a stream (the error-budget series
# come only with the SRE pack's budget decisions).
SERIES = (
    "streamrules_build_info",
    "streamrules_records_in_total",
    "streamrules_events_decoded_total",
    "streamrules_dead_letters_total",
    "streamrules_decisions_total",
    "streamrules_decision_latency_seconds_bucket",
    "streamrules_decision_latency_seconds_count",
    "streamrules_rule_firings_total",
    "streamrules_rule_errors_total",
    "streamrules_facts_live",
    "streamrules_watermark_timestamp_seconds",
    "streamrules_partition_watermark_timestamp_seconds",
    "streamrules_watermark_lag_seconds",
    "streamrules_consumer_lag",
    "streamrules_assigned_partitions",
    "streamrules_batch_duration_seconds_bucket",
    "streamrules_rebuilds_total",
    "streamrules_rebuild_records_total",
    "streamrules_rebuild_duration_seconds_count",
    "streamrules_rebalances_total",
    "streamrules_broker_up",
)
RECORDED = (
    "job:streamrules_decision_latency_slow:ratio_rate5m",
    "job:streamrules_dead_letters:ratio_rate5m",
    "job_instance_topic_partition:streamrules_stale:bool",
    "job:streamrules_stale:ratio_avg5m",
)


def test_prometheus_scrapes_the_running_service(
    kafka_bootstrap: str,
    kafka_topics: TopicFactory,
    prometheus: Callable[[int], str],
    tmp_path: Path,
) -> None:
    names = kafka_topics("orders", "incidents", "decisions", "decisions.dlq", partitions=2)
    # The last hour, as a live feed would have it: latencies and watermark lags are minutes.
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    items = list(generate_events(19, start=start, days=1 / 24, malformed_ratio=0.01))
    events = tmp_path / "events.jsonl"
    write_events(events, items)
    produced = cli("produce", str(events), *produce_flags(kafka_bootstrap, names))
    assert produced.returncode in (0, 1), produced.stderr.decode()  # 1: the malformed lines
    # Without --dead-letters only the valid lines are sent, each to an input topic.
    sent = int(produced.stderr.decode().split("sent ", 1)[1].split(" ", 1)[0])

    port = _free_port()
    service = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            cli_cmd(
                "run",
                *topic_flags(kafka_bootstrap, names),
                "--group-id",
                f"g-{names['orders']}",
                "--metrics-port",
                str(port),
                "--metrics-host",
                "127.0.0.1",
            ),
            cwd=ROOT,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        _wait("the service's /healthz", lambda: _get(f"{service}/healthz")[0] == 200, 120)
        url = prometheus(port)

        def all_processed() -> bool:
            assert proc.poll() is None, log.read_text()[-2000:]
            got = _value(url, 'sum(streamrules_records_in_total{job="streamrules"})')
            return got == sent

        _wait("every produced record counted by Prometheus", all_processed)

        def ready() -> bytes | None:
            status, body = _get(f"{service}/readyz")
            return body if status == 200 else None

        body = _wait("/readyz", ready, 120)
        assert json.loads(body) == {
            "status": "ok",
            "checks": {"assigned": True, "rebuilt": True, "broker": True},
        }

        assert _value(url, 'up{job="streamrules"}') == 1
        present = set(json.loads(_get(f"{url}/api/v1/label/__name__/values")[1])["data"])
        missing = [s for s in SERIES if s not in present]
        assert not missing, f"series that never arrived: {missing}"
        decisions = _value(url, "sum(streamrules_decisions_total)")
        assert decisions is not None and decisions > 0
        assert _value(url, "sum(streamrules_decision_latency_seconds_count)") == decisions
        assert _value(url, 'streamrules_decision_latency_seconds_bucket{le="5.0"}') is not None
        assert _value(url, 'sum(streamrules_dead_letters_total{reason="late_event"})') is not None
        assert _value(url, "sum(streamrules_assigned_partitions)") == 4
        lags = _query(url, "streamrules_watermark_lag_seconds")
        assert {r["metric"]["topic"] for r in lags} <= {names["orders"], names["incidents"]}
        assert all(0 < float(r["value"][1]) < 3 * 3600 for r in lags)  # the last hour's events
        # The recording rules of alerts.yml evaluate over the real series.
        for record in RECORDED:
            _wait(f"recording rule {record}", lambda r=record: _query(url, r), 60)  # type: ignore[misc]
        status, body = _get(f"{url}/api/v1/rules")
        assert status == 200
        groups = json.loads(body)["data"]["groups"]
        unhealthy = [
            (g["name"], r["name"], r.get("lastError"))
            for g in groups
            for r in g["rules"]
            if r["health"] != "ok"
        ]
        assert not unhealthy
        # Every dashboard query is valid PromQL for this Prometheus, and most have data.
        with_data: dict[str, bool] = {}
        for title, expr in _dashboard_queries():
            for var, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(var, value)
            status, body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            assert status == 200, (title, expr, body)
            found = bool(json.loads(body)["data"]["result"])
            with_data[title] = with_data.get(title, False) or found
        empty = [title for title, found in with_data.items() if not found]
        # Only the SRE pack's budget panels may be empty: they need its budget decisions.
        assert set(empty) <= {
            "Budget consumed at the last exhaustion",
            "Fast burns in range",
            "Error-budget decisions",
        }, empty
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, log.read_text()[-2000:]
