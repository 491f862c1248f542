"""What the service loop tells operations: readiness, and the metrics hooks of each batch,
over the in-memory transport with a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamrules.app import App
from streamrules.codec import Decision, parse_rfc3339
from streamrules.config import Settings
from streamrules.generate import generate_events
from streamrules.metrics import Metrics, PrometheusMetrics
from streamrules.pipeline import Pipeline
from streamrules.transport.memory import ManualClock, MemoryBroker, MemoryTransport
from tests.unit.test_app_memory import TOPICS, _broker, _produce

SETTINGS = Settings(batch_size=37, idle_ms=500)


class _Ops(Metrics):
    """Records what operations would see after each batch."""

    def __init__(self) -> None:
        self.app: App | None = None
        self.batches: list[tuple[dict[str, bool], int]] = []  # (readiness, records so far)
        self.rebuild_records: list[int] = []
        self.rebuilt_after: list[float] = []
        self.assignments: list[frozenset[tuple[str, int]]] = []
        self.delivered_decisions: list[Decision] = []
        self.delivered_causes: list[int] = []
        self.partition_marks: list[tuple[Mapping[tuple[str, int], int], int]] = []
        self.last_watermark: int | None = None
        self.broker: list[bool] = []
        self.pipelines: list[Pipeline] = []

    def batch_latency(self, seconds: float) -> None:
        assert self.app is not None
        self.batches.append((self.app.readiness(), self.app.stats.records))

    def rebuild(self, records: int) -> None:
        self.rebuild_records.append(records)

    def rebuild_done(self, seconds: float) -> None:
        self.rebuilt_after.append(seconds)

    def rebalance(self, assigned: Collection[tuple[str, int]]) -> None:
        self.assignments.append(frozenset(assigned))

    def delivered(self, decisions: Sequence[Decision], event_ms: Sequence[int]) -> None:
        self.delivered_decisions.extend(decisions)
        self.delivered_causes.extend(event_ms)

    def watermark(self, ts_ms: int) -> None:
        self.last_watermark = ts_ms

    def partition_watermarks(self, ts_ms: Mapping[tuple[str, int], int]) -> None:
        assert self.last_watermark is not None
        self.partition_marks.append((dict(ts_ms), self.last_watermark))

    def broker_up(self, up: bool) -> None:
        self.broker.append(up)

    def pipeline(self, pipeline: Pipeline) -> None:
        self.pipelines.append(pipeline)


def _items(seed: int = 3) -> list[tuple[str, bytes | None, bytes]]:
    return list(generate_events(seed, days=0.2, orders_per_hour=300, malformed_ratio=0.02))


async def _run(broker: MemoryBroker, metrics: Metrics) -> App:
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=200)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000, metrics=metrics)
    if isinstance(metrics, _Ops):
        metrics.app = app
    assert app.readiness() == {"assigned": False, "rebuilt": False, "broker": True}
    await asyncio.wait_for(app.run(), timeout=60)
    return app


async def test_readiness_waits_for_the_rebuild_after_a_restart() -> None:
    items = _items()
    half = len(items) // 2
    broker = _broker(items[:half])
    await _run(broker, Metrics())
    published_before = len(broker.records("decisions"))
    for topic, key, value in items[half:]:
        _produce(broker, topic, key, value)

    ops = _Ops()
    app = await _run(broker, ops)
    assert ops.assignments == [frozenset(app.transport.assignment())]
    (replay,) = ops.rebuild_records
    assert replay > SETTINGS.batch_size  # the rebuild takes several batches
    assert len(ops.rebuilt_after) == 1 and ops.rebuilt_after[0] >= 0
    not_ready = [b for b in ops.batches if not b[0]["rebuilt"]]
    assert not_ready, "the first batches re-read what was committed: not ready yet"
    for readiness, records in ops.batches:
        assert readiness["assigned"] and readiness["broker"]
        if readiness["rebuilt"]:
            assert records >= replay  # ready only once every re-read record is processed
    assert ops.batches[-1][0] == {"assigned": True, "rebuilt": True, "broker": True}
    assert ops.broker == [], "the broker stayed up: the hook hears changes only"
    # The pipeline of the start and the rebuild's.
    assert len(ops.pipelines) == 2 and ops.pipelines[-1] is app.pipeline

    app.broker_reachable = False
    assert app.readiness()["broker"] is False

    # Latency: every decision published in this run, once, with the time of its cause.
    published = broker.records("decisions")[published_before:]
    assert [d.decision_id for d in ops.delivered_decisions] == [
        dict(r.headers)["decision_id"].decode() for r in published
    ]
    assert len(ops.delivered_causes) == len(ops.delivered_decisions)
    for d, cause in zip(ops.delivered_decisions, ops.delivered_causes, strict=True):
        assert cause > 0
        if d.rule == "discount":  # caused by its own order: the cause is the order's time
            assert parse_rfc3339(d.event_time)[1] == cause
    # A partition's watermark never runs ahead of the merged one.
    assert ops.partition_marks
    for marks, merged in ops.partition_marks:
        assert all(ts <= merged for ts in marks.values())


def _scrape(m: PrometheusMetrics) -> dict[str, float]:
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(m.registry).decode()):
        for s in family.samples:
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    return totals


async def test_the_prometheus_series_agree_with_the_app_stats() -> None:
    broker = _broker(_items(5))
    metrics = PrometheusMetrics()
    app = await _run(broker, metrics)
    got = _scrape(metrics)
    stats = app.stats
    assert stats.decisions > 0 and stats.dead_letters > 0
    assert got["streamrules_decisions_total"] == stats.decisions
    assert got["streamrules_dead_letters_total"] == stats.dead_letters
    assert got["streamrules_decision_latency_seconds_count"] == stats.decisions
    assert got["streamrules_records_in_total"] == stats.records
    assert got["streamrules_rule_firings_total"] >= stats.decisions
    assert got["streamrules_facts_live"] == app.pipeline.net.fact_count
    assert got["streamrules_rebalances_total"] == 1
    assert got["streamrules_rebuild_duration_seconds_count"] == 1
    assert got["streamrules_assigned_partitions"] == len(app.transport.assignment())
    assert got["streamrules_broker_up"] == 1
    assert got["streamrules_watermark_timestamp_seconds"] * 1000 == app.pipeline.watermark_ms
