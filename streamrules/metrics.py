"""Observability: hooks called by the service at each stage of the flow.

records in (per partition) -> decoded -> dead letters (per reason) -> decisions (per rule,
with the end-to-end latency once acknowledged); plus the watermarks, the consumer lag per
partition, the duration of each batch and of each rebuild, rebalances and the broker's
reachability. The default ``Metrics`` does nothing, so the hot path pays one method call
per batch (per decision or dead letter for the counts by rule and reason).

``PrometheusMetrics`` keeps the same as plain Python numbers, updated on the event loop
without locks, and turns them into Prometheus series only when scraped (a collector in its
own registry; ``streamrules.httpserver`` serves it with the health probes). Needs the
optional ``prometheus-client`` package (``pip install 'streamrules[prometheus]'``).
What the engine counts itself (firings and rule errors by rule, facts live by type) is read
from the pipeline at scrape time: no work per firing here.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamrules.errors import ConfigError

if TYPE_CHECKING:
    from streamrules.codec import Decision
    from streamrules.pipeline import Pipeline

__all__ = [
    "ERROR_BUDGET_RULES",
    "LATENCY_BUCKETS",
    "LATENCY_SLO_SECONDS",
    "Metrics",
    "PrometheusMetrics",
    "make_metrics",
]

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
_Series = Iterable[tuple[Sequence[str], float]]  # (label values, value) per series

# Upper bounds (seconds) of the end-to-end decision latency histogram. The latency SLO's
# threshold must be one of them: the alert rules read the bucket `le="5.0"`.
LATENCY_SLO_SECONDS = 5.0
LATENCY_BUCKETS: tuple[float, ...] = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, LATENCY_SLO_SECONDS, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
)  # fmt: skip
_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REBUILD_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# The SRE pack's decisions that carry a service's error-budget state: rule -> window.
ERROR_BUDGET_RULES: Mapping[str, str] = {
    "error_budget_burn": "1h",
    "error_budget_exhausted": "30d",
}


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

    def delivered(self, decisions: Sequence[Decision], event_ms: Sequence[int]) -> None:
        """A batch's decisions, acknowledged by the broker just now; ``event_ms[i]`` is the
        event time (epoch ms) of the record whose processing caused ``decisions[i]``."""

    def watermark(self, ts_ms: int) -> None:
        """The event-time watermark moved to ``ts_ms``."""

    def partition_watermarks(self, ts_ms: Mapping[TopicPartition, int]) -> None:
        """The largest event time processed (and applied) per partition, after a batch."""

    def lag(self, topic: str, partition: int, lag: int) -> None:
        """Records on the broker not yet processed, for one partition."""

    def batch_latency(self, seconds: float) -> None:
        """Processing time of one batch, from fetch to acknowledged commit."""

    def rebuild(self, records: int) -> None:
        """Working memory rebuild started after an assignment, re-reading ``records``."""

    def rebuild_done(self, seconds: float) -> None:
        """The rebuild caught up with the committed offsets after ``seconds``."""

    def rebalance(self, assigned: Collection[TopicPartition]) -> None:
        """A new assignment (start, restart, rebalance): these partitions are ours now."""

    def pipeline(self, pipeline: Pipeline) -> None:
        """A new pipeline (working memory) starts: facts, firings and rule errors are its."""

    def broker_up(self, up: bool) -> None:
        """Whether the Kafka cluster answers (as seen by the service loop)."""


class _Histogram:
    """A histogram updated without locks on one thread and read on another.

    Observing is one ``bisect`` and two additions; a reader gets a consistent enough
    snapshot (the counts are copied in one C call).
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> tuple[list[tuple[str, float]], float]:
        counts = self.counts.copy()
        out: list[tuple[str, float]] = []
        total = 0
        for bound, n in zip((*self.bounds, float("inf")), counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(total)))
        return out, self.sum


class PrometheusMetrics(Metrics):
    """Prometheus series ``streamrules_*`` in ``registry`` (a new one by default)."""

    def __init__(self, registry: Any = None, *, version: str | None = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise ConfigError(
                "metrics_port is set but prometheus-client is not installed "
                "(pip install 'streamrules[prometheus]')"
            ) from None
        from streamrules import __version__
        from streamrules.codec import DEAD_LETTER_REASONS

        self.version: str = __version__ if version is None else version
        self.registry = prom.CollectorRegistry() if registry is None else registry
        self._records: dict[TopicPartition, int] = {}
        self._decoded = 0
        # Every reason from the start: a ratio over a series that does not exist yet is no
        # ratio, and rate() misses the first increment of a series born at 1.
        self._dead: dict[str, int] = dict.fromkeys(DEAD_LETTER_REASONS, 0)
        self._decisions: dict[str, int] = {}
        self._latency = _Histogram(LATENCY_BUCKETS)
        self._budget_decisions: dict[tuple[str, str], int] = {}
        self._budget_downtime: dict[tuple[str, str], float] = {}
        self._budget_seconds: dict[str, float] = {}
        self._watermark_ms: int | None = None
        self._partition_wm: dict[TopicPartition, int] = {}
        self._lag: dict[TopicPartition, int] = {}
        self._batch = _Histogram(_BATCH_BUCKETS)
        self._rebuild_records = 0
        self._rebuilds = 0
        self._rebuild_duration = _Histogram(_REBUILD_BUCKETS)
        self._rebalances = 0
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._broker_up = True
        # Engine counters: those of the pipelines replaced so far, plus the live one's.
        self._pipeline: Pipeline | None = None
        self._firings_base: dict[str, int] = {}
        self._errors_base: dict[str, int] = {}
        self._fold_lock = threading.Lock()
        self.registry.register(_Collector(self))

    # -- hooks (on the event loop) -------------------------------------------------------
    def records_in(self, topic: str, partition: int, count: int) -> None:
        tp = (topic, partition)
        self._records[tp] = self._records.get(tp, 0) + count

    def decoded(self, count: int) -> None:
        self._decoded += count

    def dead_letter(self, reason: str) -> None:
        self._dead[reason] = self._dead.get(reason, 0) + 1

    def decision(self, rule: str) -> None:
        self._decisions[rule] = self._decisions.get(rule, 0) + 1

    def delivered(self, decisions: Sequence[Decision], event_ms: Sequence[int]) -> None:
        now_ms = time.time() * 1000.0
        observe = self._latency.observe
        for ts in event_ms:
            # An event stamped ahead of this host's clock (producer skew) counts as instant.
            observe(max(0.0, now_ms - ts) / 1000.0)
        for d in decisions:
            window = ERROR_BUDGET_RULES.get(d.rule)
            if window is not None:
                self._budget_state(d.rule, d.payload)

    def _budget_state(self, rule: str, payload: Mapping[str, Any]) -> None:
        service = payload.get("service")
        if not isinstance(service, str):
            return
        key = (service, rule)
        self._budget_decisions[key] = self._budget_decisions.get(key, 0) + 1
        downtime, budget = payload.get("downtime_s"), payload.get("budget_s")
        if isinstance(downtime, int | float):
            self._budget_downtime[key] = float(downtime)
        if isinstance(budget, int | float):
            self._budget_seconds[service] = float(budget)

    def watermark(self, ts_ms: int) -> None:
        self._watermark_ms = ts_ms

    def partition_watermarks(self, ts_ms: Mapping[TopicPartition, int]) -> None:
        known = self._partition_wm
        for tp, ts in ts_ms.items():
            if tp in self._assigned and ts > known.get(tp, -(2**63)):
                known[tp] = ts

    def lag(self, topic: str, partition: int, lag: int) -> None:
        tp = (topic, partition)
        if tp in self._assigned:
            self._lag[tp] = lag

    def batch_latency(self, seconds: float) -> None:
        self._batch.observe(seconds)

    def rebuild(self, records: int) -> None:
        self._rebuilds += 1
        self._rebuild_records += records

    def rebuild_done(self, seconds: float) -> None:
        self._rebuild_duration.observe(seconds)

    def rebalance(self, assigned: Collection[TopicPartition]) -> None:
        self._rebalances += 1
        self._assigned = frozenset(assigned)
        # A revoked partition's lag and watermark are another instance's now: a frozen
        # value here would read as a stuck partition forever.
        for table in (self._lag, self._partition_wm):
            for tp in [tp for tp in table if tp not in self._assigned]:
                del table[tp]

    def pipeline(self, pipeline: Pipeline) -> None:
        with self._fold_lock:
            old = self._pipeline
            if old is not None and old is not pipeline:
                for base, counts in (
                    (self._firings_base, old.firings_by_rule),
                    (self._errors_base, old.rule_errors_by_rule),
                ):
                    for rule, n in dict(counts).items():
                        base[rule] = base.get(rule, 0) + n
            self._pipeline = pipeline
            # Every rule's series from the start, at 0: increase() then sees a first error.
            for production in pipeline.productions:
                self._firings_base.setdefault(production.name, 0)
                self._errors_base.setdefault(production.name, 0)

    def broker_up(self, up: bool) -> None:
        self._broker_up = up

    # -- scrape (on the HTTP server's thread) --------------------------------------------
    def engine_counts(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """(firings by rule, rule errors by rule, facts live by type), summed over
        every pipeline this process has had."""
        with self._fold_lock:
            firings = dict(self._firings_base)
            errors = dict(self._errors_base)
            p = self._pipeline
            facts: dict[str, int] = {}
            if p is not None:
                for base, counts in ((firings, p.firings_by_rule), (errors, p.rule_errors_by_rule)):
                    for rule, n in dict(counts).items():
                        base[rule] = base.get(rule, 0) + n
                facts = p.facts_live_by_type()
        return firings, errors, facts


class _Collector:
    """Turns a ``PrometheusMetrics``' numbers into metric families at scrape time."""

    def __init__(self, m: PrometheusMetrics) -> None:
        self.m = m

    def describe(self) -> list[Any]:
        return []  # unchecked collector: its series are known only when collected

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.m
        now = time.time()

        def counter(name: str, doc: str, labels: Sequence[str], values: _Series) -> Any:
            fam = CounterMetricFamily(name, doc, labels=list(labels))
            for label_values, v in values:
                fam.add_metric(list(label_values), v)
            return fam

        def gauge(name: str, doc: str, labels: Sequence[str], values: _Series) -> Any:
            fam = GaugeMetricFamily(name, doc, labels=list(labels))
            for label_values, v in values:
                fam.add_metric(list(label_values), v)
            return fam

        def histogram(name: str, doc: str, h: _Histogram) -> Any:
            buckets, total = h.buckets()
            return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total)

        def tp(k: TopicPartition) -> tuple[str, str]:
            return (k[0], str(k[1]))

        yield gauge(
            "streamrules_build_info",
            "Version of the running processor",
            ["version"],
            [((m.version,), 1.0)],
        )
        yield counter(
            "streamrules_records_in",
            "Records fetched from the input topics",
            ["topic", "partition"],
            [(tp(k), v) for k, v in sorted(m._records.copy().items())],
        )
        yield counter(
            "streamrules_events_decoded", "Records decoded into events", [], [((), m._decoded)]
        )
        yield counter(
            "streamrules_dead_letters",
            "Records sent to the dead-letter topic",
            ["reason"],
            [((k,), v) for k, v in sorted(m._dead.copy().items())],
        )
        yield counter(
            "streamrules_decisions",
            "Decisions published",
            ["rule"],
            [((k,), v) for k, v in sorted(m._decisions.copy().items())],
        )
        yield histogram(
            "streamrules_decision_latency_seconds",
            "From the causing event's time to the decision acknowledged by the broker",
            m._latency,
        )
        firings, errors, facts = m.engine_counts()
        yield counter(
            "streamrules_rule_firings",
            "Rule firings (the engine's work, rebuilds included)",
            ["rule"],
            [((k,), v) for k, v in sorted(firings.items())],
        )
        yield counter(
            "streamrules_rule_errors",
            "Rule actions that raised",
            ["rule"],
            [((k,), v) for k, v in sorted(errors.items())],
        )
        yield gauge(
            "streamrules_facts_live",
            "Facts in working memory",
            ["type"],
            [((k,), v) for k, v in sorted(facts.items())],
        )
        wm = m._watermark_ms
        yield gauge(
            "streamrules_watermark_timestamp_seconds",
            "Event-time watermark (largest event time processed), epoch seconds",
            [],
            [] if wm is None else [((), wm / 1000.0)],
        )
        pwm = sorted(m._partition_wm.copy().items())
        yield gauge(
            "streamrules_partition_watermark_timestamp_seconds",
            "Largest event time processed per input partition, epoch seconds",
            ["topic", "partition"],
            [(tp(k), v / 1000.0) for k, v in pwm],
        )
        yield gauge(
            "streamrules_watermark_lag_seconds",
            "Wall clock minus the partition's watermark, at scrape time",
            ["topic", "partition"],
            [(tp(k), now - v / 1000.0) for k, v in pwm],
        )
        yield gauge(
            "streamrules_consumer_lag",
            "Records of the partition not processed yet (on the broker or buffered)",
            ["topic", "partition"],
            [(tp(k), v) for k, v in sorted(m._lag.copy().items())],
        )
        yield gauge(
            "streamrules_assigned_partitions",
            "Input partitions assigned",
            [],
            [((), len(m._assigned))],
        )
        yield histogram(
            "streamrules_batch_duration_seconds",
            "One batch, from fetch to acknowledged commit",
            m._batch,
        )
        yield counter(
            "streamrules_rebuilds", "Working-memory rebuilds started", [], [((), m._rebuilds)]
        )
        yield counter(
            "streamrules_rebuild_records",
            "Records re-read to rebuild working memory",
            [],
            [((), m._rebuild_records)],
        )
        yield histogram(
            "streamrules_rebuild_duration_seconds",
            "From an assignment to working memory caught up with the committed offsets",
            m._rebuild_duration,
        )
        yield counter(
            "streamrules_rebalances", "Partition assignments received", [], [((), m._rebalances)]
        )
        yield gauge(
            "streamrules_broker_up",
            "1 when the Kafka cluster answers",
            [],
            [((), 1.0 if m._broker_up else 0.0)],
        )
        yield counter(
            "streamrules_error_budget_decisions",
            "The SRE pack's error-budget decisions, by service and rule",
            ["service", "rule"],
            [(k, v) for k, v in sorted(m._budget_decisions.copy().items())],
        )
        yield gauge(
            "streamrules_error_budget_downtime_seconds",
            "Downtime in the rule's window at its last error-budget decision",
            ["service", "rule", "window"],
            [
                ((s, r, ERROR_BUDGET_RULES[r]), v)
                for (s, r), v in sorted(m._budget_downtime.copy().items())
            ],
        )
        yield gauge(
            "streamrules_error_budget_seconds",
            "A service's error budget (downtime allowed in 30 days)",
            ["service"],
            [((k,), v) for k, v in sorted(m._budget_seconds.copy().items())],
        )


def make_metrics(port: int | None) -> Metrics:
    """The Prometheus adapter when a port is configured, else the no-op hooks."""
    if port is None:
        return Metrics()
    return PrometheusMetrics()
