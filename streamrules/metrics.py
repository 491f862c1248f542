"""Observability: hooks called by the service at each stage of the flow.

records in (per partition) -> decoded -> dead letters (per reason) -> decisions (per rule);
plus the watermark, the consumer lag per partition and the latency of each batch. The
default ``Metrics`` does nothing, so the hot path pays one method call per batch or event.
``PrometheusMetrics`` exports the same as Prometheus series when the optional
``prometheus-client`` package is installed (``pip install 'streamrules[prometheus]'``) and
``metrics_port`` is configured.
"""

from __future__ import annotations

import logging
from typing import Any

from streamrules.errors import ConfigError

__all__ = ["Metrics", "PrometheusMetrics", "make_metrics"]

log = logging.getLogger(__name__)


class Metrics:
    """No-op hooks; subclass and override what you want to observe."""

    def records_in(self, topic: str, partition: int, count: int) -> None:
        """``count`` records fetched from one partition."""

    def decoded(self, count: int) -> None:
        """``count`` records decoded into events."""

    def dead_letter(self, reason: str) -> None:
        """One record sent to the dead-letter topic."""

    def decision(self, rule: str) -> None:
        """One decision published."""

    def watermark(self, ts_ms: int) -> None:
        """The event-time watermark moved to ``ts_ms``."""

    def lag(self, topic: str, partition: int, lag: int) -> None:
        """Records on the broker not yet processed, for one partition."""

    def batch_latency(self, seconds: float) -> None:
        """Processing time of one batch, from fetch to acknowledged commit."""

    def rebuild(self, records: int) -> None:
        """Working memory rebuilt after an assignment, re-reading ``records`` records."""

    def broker_up(self, up: bool) -> None:
        """The broker became reachable (True) or unreachable (False)."""


class PrometheusMetrics(Metrics):
    """Prometheus series ``streamrules_*``, served over HTTP on ``port``."""

    def __init__(self, port: int | None, registry: Any = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigError(
                "metrics_port is set but prometheus-client is not installed "
                "(pip install 'streamrules[prometheus]')"
            ) from None
        kw: dict[str, Any] = {} if registry is None else {"registry": registry}
        self._records = prom.Counter(
            "streamrules_records_in", "Records fetched", ["topic", "partition"], **kw
        )
        self._decoded = prom.Counter("streamrules_events_decoded", "Records decoded", **kw)
        self._dlq = prom.Counter(
            "streamrules_dead_letters", "Records dead-lettered", ["reason"], **kw
        )
        self._decisions = prom.Counter(
            "streamrules_decisions", "Decisions published", ["rule"], **kw
        )
        self._watermark = prom.Gauge(
            "streamrules_watermark_ms", "Event-time watermark (epoch ms)", **kw
        )
        self._lag = prom.Gauge(
            "streamrules_consumer_lag", "Records not yet processed", ["topic", "partition"], **kw
        )
        self._latency = prom.Histogram(
            "streamrules_batch_seconds", "Batch processing latency", **kw
        )
        self._rebuild = prom.Counter(
            "streamrules_rebuild_records", "Records re-read to rebuild working memory", **kw
        )
        self._broker_up = prom.Gauge(
            "streamrules_broker_up", "1 while the Kafka broker answers, else 0", **kw
        )
        self._broker_up.set(1)
        if port is not None:
            prom.start_http_server(port, **kw)
            log.info("metrics on port %d", port)

    def records_in(self, topic: str, partition: int, count: int) -> None:
        self._records.labels(topic, str(partition)).inc(count)

    def decoded(self, count: int) -> None:
        self._decoded.inc(count)

    def dead_letter(self, reason: str) -> None:
        self._dlq.labels(reason).inc()

    def decision(self, rule: str) -> None:
        self._decisions.labels(rule).inc()

    def watermark(self, ts_ms: int) -> None:
        self._watermark.set(ts_ms)

    def lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(topic, str(partition)).set(lag)

    def batch_latency(self, seconds: float) -> None:
        self._latency.observe(seconds)

    def rebuild(self, records: int) -> None:
        self._rebuild.inc(records)

    def broker_up(self, up: bool) -> None:
        self._broker_up.set(1 if up else 0)


def make_metrics(port: int | None) -> Metrics:
    """The Prometheus adapter when a port is configured, else the no-op hooks."""
    if port is None:
        return Metrics()
    return PrometheusMetrics(port)
