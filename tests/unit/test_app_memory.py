"""The service loop (streamrules.app) over the in-memory transport, with a manual clock.

What `run` promises, without a broker: the decisions published equal the pipeline's on the
merged order (same ids, same order), dead letters carry the original bytes and headers,
offsets are committed only with their output, and a restart or a rebalance rebuilds
working memory so that nothing is lost or published twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrules.app import App
from streamrules.codec import Event, Record
from streamrules.config import Settings
from streamrules.errors import TransportError
from streamrules.generate import generate_events
from streamrules.merge import Buffered, merge_sorted
from streamrules.metrics import Metrics
from streamrules.pipeline import Pipeline, StepResult
from streamrules.transport.memory import ManualClock, MemoryBroker, MemoryTransport

SETTINGS = Settings(batch_size=37, idle_ms=500)
TOPICS = ("orders", "incidents")
# Each fetch with records takes this much processing time: several fetches exceed idle_ms,
# so the order holds only because partitions known to be behind are waited for.
FETCH_MS = 200


def _broker(items: list[tuple[str, bytes | None, bytes]], order_parts: int = 2) -> MemoryBroker:
    broker = MemoryBroker()
    broker.create_topic("orders", order_parts)
    broker.create_topic("incidents", 1)
    broker.create_topic("decisions", 1)
    broker.create_topic("decisions.dlq", 1)
    for topic, key, value in items:
        _produce(broker, topic, key, value)
    return broker


def _produce(broker: MemoryBroker, topic: str, key: bytes | None, value: bytes) -> None:
    """As `streamrules produce` does: the record timestamp is the event time."""
    item = _PIPE.decode(Record(topic, 0, 0, key, value))
    broker.produce(topic, key, value, timestamp_ms=item.ts_ms if isinstance(item, Event) else 0)


_PIPE = Pipeline()


def _events(days: float = 0.25, malformed: float = 0.02) -> list[tuple[str, bytes | None, bytes]]:
    return list(generate_events(11, days=days, orders_per_hour=240, malformed_ratio=malformed))


def merged_result(broker: MemoryBroker) -> StepResult:
    """What the pipeline alone decides on all input partitions merged in event-time
    order (one instance's view of everything)."""
    streams = []
    for topic in TOPICS:
        for p, part in enumerate(broker.topics[topic]):
            stream = []
            for r in part:
                rec = Record(topic, p, r.offset, r.key, r.value)
                item = _PIPE.decode(rec)
                ts = item.ts_ms if isinstance(item, Event) else None
                stream.append(Buffered(ts, topic, p, r.offset, rec))
            streams.append(stream)
    return Pipeline().process_many(b.item for b in merge_sorted(streams))


def _expected(broker: MemoryBroker) -> tuple[list[str], Counter[str]]:
    """Decision ids in firing order and dead-letter reasons of ``merged_result``."""
    result = merged_result(broker)
    return [d.decision_id for d in result.decisions], Counter(d.reason for d in result.dead_letters)


def _published(broker: MemoryBroker) -> list[str]:
    out = []
    for r in broker.records("decisions"):
        headers = dict(r.headers)
        out.append(headers["decision_id"].decode())
    return out


async def _run(broker: MemoryBroker, **kw: object) -> App:
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000, **kw)  # type: ignore[arg-type]
    await asyncio.wait_for(app.run(), timeout=60)
    return app


async def test_decisions_equal_the_pipeline_on_the_merged_order() -> None:
    broker = _broker(_events())
    want_ids, want_dead = _expected(broker)
    app = await _run(broker)
    assert want_ids, "the generated stream should cause decisions"
    assert _published(broker) == want_ids
    dlq = broker.records("decisions.dlq")
    assert Counter(dict(r.headers)["reason"].decode() for r in dlq) == want_dead
    assert app.stats.decisions == len(want_ids)
    # Every offset committed, to the end of each partition.
    commits = broker.commits["g"]
    for topic in TOPICS:
        for p, part in enumerate(broker.topics[topic]):
            assert commits.get((topic, p), 0) == len(part)


async def test_records_are_keyed_and_headed_as_the_contract_says() -> None:
    broker = _broker(_events(days=0.1))
    await _run(broker)
    import orjson

    for r in broker.records("decisions"):
        d = orjson.loads(r.value)
        headers = dict(r.headers)
        assert r.key == d["key"].encode()
        assert headers["rule"] == d["rule"].encode()
        assert headers["decision_id"] == d["decision_id"].encode()
    originals = {(t, v) for t, _, v in _events(days=0.1)}
    for r in broker.records("decisions.dlq"):
        h = dict(r.headers)
        assert {"source.topic", "source.partition", "source.offset", "reason", "message"} <= set(h)
        assert (h["source.topic"].decode(), r.value) in originals


async def test_restart_rebuilds_and_publishes_nothing_twice() -> None:
    items = _events()
    half = len(items) // 2
    broker = _broker(items[:half])
    await _run(broker)
    first = _published(broker)
    for topic, key, value in items[half:]:
        _produce(broker, topic, key, value)
    app = await _run(broker)
    assert app.stats.rebuilds >= 1
    assert app.stats.suppressed > 0
    # One run over everything publishes the same ids in the same order.
    fresh = _broker(items)
    await _run(fresh)
    assert _published(broker) == _published(fresh)
    assert _published(broker)[: len(first)] == first


async def test_failed_delivery_loses_nothing_after_restart() -> None:
    items = _events()
    broker = _broker(items)
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000)

    # Fail the fourth delivery: three batches are out and committed, the fourth is not.
    real = transport.deliver
    calls = 0

    async def flaky(records, offsets, metadata=None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 4:
            raise TransportError("broker went away", retriable=True)
        await real(records, offsets, metadata)

    transport.deliver = flaky  # type: ignore[method-assign]
    with pytest.raises(TransportError):
        await asyncio.wait_for(app.run(), timeout=60)
    await _run(broker)
    want_ids, _ = _expected(broker)
    assert set(_published(broker)) == set(want_ids)
    # At-least-once with a clean commit boundary: nothing was published twice either.
    assert sorted(_published(broker)) == sorted(want_ids)


async def test_rebalance_mid_stream_rebuilds_and_completes() -> None:
    items = _events()
    broker = _broker(items)
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000)
    task = asyncio.create_task(app.run())
    while transport.deliveries < 3:
        await asyncio.sleep(0)
    # The group shrinks this member to one orders partition and back to everything.
    await transport.assign({("orders", 0), ("incidents", 0)})
    while transport.deliveries < 6:
        await asyncio.sleep(0)
    await transport.assign(transport.all_partitions())
    await asyncio.wait_for(task, timeout=60)
    assert app.stats.rebuilds >= 3
    want_ids, _ = _expected(broker)
    assert set(_published(broker)) == set(want_ids)


async def test_empty_partition_waits_idle_time_on_the_processing_clock() -> None:
    broker = _broker([])
    order = (
        b'{"type":"order_placed","order_id":"o-1","customer_id":"c-1","logged_in":true,'
        b'"items":[{"sku":"A","qty":1,"price":1}],"ts":"2026-11-26T10:00:00Z"}'
    )
    broker.produce("orders", b"c-1", order, partition=0, timestamp_ms=1)
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(replace(SETTINGS, idle_ms=10_000), transport, clock=clock, stop_when_idle_ms=60_000)
    task = asyncio.create_task(app.run())
    while clock() < 9_000:
        await asyncio.sleep(0)
    assert broker.records("decisions") == []  # still waiting for the empty partitions
    while clock() < 11_000:
        await asyncio.sleep(0)
    assert len(broker.records("decisions")) == 1  # idle time over: processed alone
    app.stop()
    await asyncio.wait_for(task, timeout=10)


class _Recording(Metrics):
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.records = 0
        self.watermarks: list[int] = []

    def records_in(self, topic: str, partition: int, count: int) -> None:
        self.records += count

    def decision(self, rule: str) -> None:
        self.by_rule[rule] += 1

    def dead_letter(self, reason: str) -> None:
        self.by_reason[reason] += 1

    def watermark(self, ts_ms: int) -> None:
        self.watermarks.append(ts_ms)


async def test_metrics_hooks_see_every_stage() -> None:
    broker = _broker(_events(days=0.1))
    metrics = _Recording()
    app = await _run(broker, metrics=metrics)
    assert metrics.records == sum(len(p) for t in TOPICS for p in broker.topics[t])
    assert dict(metrics.by_rule) == app.stats.decisions_by_rule
    assert dict(metrics.by_reason) == app.stats.dead_letters_by_reason
    assert metrics.watermarks == sorted(metrics.watermarks), "the watermark never moves back"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.integers(1, 60),
    fetch_ms=st.sampled_from([0, 50, 400]),
    idle_ms=st.sampled_from([0, 100, 1000]),
    parts=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_batching_timing_and_partitions_do_not_change_the_decisions(
    batch: int, fetch_ms: int, idle_ms: int, parts: int, seed: int
) -> None:
    """Whatever the batch size, fetch latency, idle time and partition count, a stream
    already on the broker gives exactly the pipeline's decisions on the merged order."""
    items = list(generate_events(seed, days=0.04, orders_per_hour=300, malformed_ratio=0.05))
    broker = _broker(items, order_parts=parts)
    want_ids, want_dead = _expected(broker)
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=fetch_ms)
    s = replace(SETTINGS, batch_size=batch, idle_ms=idle_ms)
    app = App(s, transport, clock=clock, stop_when_idle_ms=5_000)
    asyncio.run(asyncio.wait_for(app.run(), timeout=60))
    assert _published(broker) == want_ids
    dlq = broker.records("decisions.dlq")
    assert Counter(dict(r.headers)["reason"].decode() for r in dlq) == want_dead


class _CountingTransport(MemoryTransport):
    """Records, per delivery, how many input records its offsets cover."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.covered: list[int] = []
        self.buffered_peak = 0
        self._last: dict[tuple[str, int], int] = {}

    async def deliver(self, records, offsets, metadata=None):  # type: ignore[no-untyped-def]
        covered = sum(off - self._last.get(tp, 0) for tp, off in offsets.items())
        self._last.update(offsets)
        self.covered.append(covered)
        await super().deliver(records, offsets, metadata)


async def test_a_backlog_is_worked_off_one_bounded_batch_at_a_time() -> None:
    """However much input waits, each delivery and commit covers at most batch_size
    records, and fewer than twice batch_size records per partition wait in the merge (a
    partition is fetched while it holds fewer than batch_size, one fetch at most adds
    batch_size)."""
    broker = _broker(_events(days=0.5, malformed=0.0), order_parts=3)
    total = sum(len(p) for t in TOPICS for p in broker.topics[t])
    clock = ManualClock()
    transport = _CountingTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000)
    peak = 0
    real_step = app._step

    async def step(*, drain: bool) -> None:
        nonlocal peak
        peak = max(peak, *(app._merger.buffered(tp) for tp in app._merger.partitions))
        await real_step(drain=drain)

    app._step = step  # type: ignore[method-assign]
    await asyncio.wait_for(app.run(), timeout=60)
    assert sum(transport.covered) == total
    assert max(transport.covered) <= SETTINGS.batch_size
    assert len(transport.covered) >= total // SETTINGS.batch_size
    assert peak < 2 * SETTINGS.batch_size
    assert _published(broker) == _expected(broker)[0]


class _FlakyBroker(MemoryTransport):
    """A transport whose broker does not answer until told."""

    up = False

    def broker_up(self) -> bool:
        return self.up


class _BrokerHook(Metrics):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def broker_up(self, up: bool) -> None:
        self.seen.append(up)


async def test_an_outage_is_reported_once_each_way_and_is_not_idleness(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = _broker(_events(days=0.1))
    clock = ManualClock()
    transport = _FlakyBroker(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    hook = _BrokerHook()
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000, metrics=hook)
    loop = asyncio.get_running_loop()

    def back() -> None:
        transport.up = True

    loop.call_later(1.2, back)  # the input is idle long before: it must wait for the broker
    with caplog.at_level("INFO", logger="streamrules.app"):
        await asyncio.wait_for(app.run(), timeout=30)
    assert transport.up, "the service stopped as idle while the broker was unreachable"
    assert hook.seen == [False, True]
    messages = [r.getMessage() for r in caplog.records if r.name == "streamrules.app"]
    assert sum("broker unreachable" in m for m in messages) == 1
    assert sum("broker reachable again after" in m for m in messages) == 1
    assert _published(broker) == _expected(broker)[0]


async def test_a_rebalance_that_gives_back_the_same_partitions_keeps_working_memory() -> None:
    broker = _broker(_events())
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000)
    task = asyncio.create_task(app.run())
    while transport.deliveries < 3:
        await asyncio.sleep(0)
    await transport.assign(transport.all_partitions())  # a rebalance that moved nothing
    while transport.deliveries < 6:
        await asyncio.sleep(0)
    await transport.assign(transport.all_partitions())  # and again
    await asyncio.wait_for(task, timeout=60)
    assert app.stats.rebuilds == 1, "nothing moved, nothing rebuilt"
    want_ids, _ = _expected(broker)
    assert _published(broker) == want_ids, "each decision once, in firing order"


async def test_partitions_committed_by_another_member_meanwhile_are_rebuilt() -> None:
    broker = _broker(_events())
    clock = ManualClock()
    transport = MemoryTransport(broker, "g", TOPICS, clock=clock, fetch_ms=FETCH_MS)
    app = App(SETTINGS, transport, clock=clock, stop_when_idle_ms=2_000)
    task = asyncio.create_task(app.run())
    while transport.deliveries < 3:
        await asyncio.sleep(0)
    # While this member was out of the group another one went on and committed further.
    commits = broker.commits["g"]
    tp = max(commits, key=lambda k: commits[k])
    commits[tp] += 5
    await transport.assign(transport.all_partitions())
    await asyncio.wait_for(task, timeout=60)
    assert app.stats.rebuilds == 2
