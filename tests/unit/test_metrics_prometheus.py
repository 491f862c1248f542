"""The Prometheus adapter: the hooks become series, served over HTTP on the given port."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import CollectorRegistry

from streamrules.metrics import Metrics, PrometheusMetrics, make_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_no_port_means_no_op_hooks() -> None:
    metrics = make_metrics(None)
    assert type(metrics) is Metrics
    metrics.decision("discount")  # does nothing, raises nothing


def test_hooks_are_served_as_prometheus_series() -> None:
    port = _free_port()
    metrics = PrometheusMetrics(port, registry=CollectorRegistry())
    metrics.records_in("orders", 0, 5)
    metrics.decoded(4)
    metrics.dead_letter("schema")
    metrics.decision("discount")
    metrics.decision("discount")
    metrics.watermark(1_764_237_600_000)
    metrics.lag("orders", 0, 7)
    metrics.batch_latency(0.25)
    metrics.rebuild(3)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    expected = [
        'streamrules_records_in_total{partition="0",topic="orders"} 5.0',
        "streamrules_events_decoded_total 4.0",
        'streamrules_dead_letters_total{reason="schema"} 1.0',
        'streamrules_decisions_total{rule="discount"} 2.0',
        "streamrules_watermark_ms 1.7642376e+12",
        'streamrules_consumer_lag{partition="0",topic="orders"} 7.0',
        "streamrules_batch_seconds_count 1.0",
        "streamrules_rebuild_records_total 3.0",
    ]
    missing = [line for line in expected if line not in text.splitlines()]
    assert not missing, f"missing series: {missing}\n{text}"
