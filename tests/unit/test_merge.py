"""The event-time merge of partitions (contract section 5) against simple oracles."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streamrules.merge import Buffered, EventTimeMerger, merge_sorted

PARTS = [("incidents", 0), ("orders", 0), ("orders", 1)]

settings.register_profile("merge", max_examples=150, deadline=None)


def _streams(draw_ts: Sequence[Sequence[int | None]]) -> list[list[Buffered[str]]]:
    out = []
    for (topic, partition), tss in zip(PARTS, draw_ts, strict=False):
        out.append(
            [
                Buffered(ts, topic, partition, off, f"{topic}-{partition}@{off}")
                for off, ts in enumerate(tss)
            ]
        )
    return out


def _oracle(streams: list[list[Buffered[str]]]) -> list[str]:
    """Brute force: repeatedly take the smallest head (None first)."""
    queues = [list(s) for s in streams]
    out = []
    while any(queues):
        best = None
        for q in queues:
            if not q:
                continue
            h = q[0]
            key = (h.ts_ms is not None, h.ts_ms or 0, h.topic, h.partition, h.offset)
            if best is None or key < best[0]:
                best = (key, q)
        assert best is not None
        out.append(best[1].pop(0).item)
    return out


ts_lists = st.lists(
    st.lists(st.one_of(st.integers(0, 50), st.none()), max_size=12), min_size=1, max_size=3
)


@settings(settings.get_profile("merge"))
@given(ts_lists)
def test_sorted_partitions_merge_to_a_global_sort(raw: list[list[int | None]]) -> None:
    tss = [sorted(x for x in r if x is not None) for r in raw]
    streams = _streams(tss)
    merged = [b.item for b in merge_sorted(streams)]
    oracle = sorted(
        (b for s in streams for b in s), key=lambda b: (b.ts_ms, b.topic, b.partition, b.offset)
    )
    assert merged == [b.item for b in oracle]


@settings(settings.get_profile("merge"))
@given(ts_lists, st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), max_size=20))
def test_arrival_timing_does_not_change_the_order(
    raw: list[list[int | None]], schedule: list[tuple[int, int]]
) -> None:
    """Records arriving in any chunks, partitions marked behind while more is coming:
    the merge releases the oracle's order, never waiting on idle time."""
    streams = _streams(raw)
    expected = _oracle(streams)
    merger: EventTimeMerger[str] = EventTimeMerger(idle_ms=10**9)
    parts = PARTS[: len(streams)]
    merger.assign(parts)
    pending = [list(s) for s in streams]
    out: list[str] = []
    # After the drawn schedule, whatever is left arrives one partition at a time.
    tail = [(j, 10**6) for j in range(len(pending))]
    for i, n in [*schedule, *tail]:
        i %= len(pending)
        for rec in pending[i][:n]:
            merger.add(rec)
        del pending[i][:n]
        for j, p in enumerate(parts):
            merger.set_behind(p, bool(pending[j]))
        while (b := merger.pop(0)) is not None:
            out.append(b.item)
    # End of input: an exhausted partition would block for the idle time; drain instead.
    out.extend(b.item for b in merger.drain())
    # Records without an event time go out whenever they reach a head: only their
    # multiset and the timed records' order are fixed.
    untimed = {b.item for s in streams for b in s if b.ts_ms is None}
    assert sorted(out) == sorted(expected)
    assert [x for x in out if x not in untimed] == [x for x in expected if x not in untimed]


def test_empty_caught_up_partition_blocks_for_idle_time_only() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(idle_ms=100)
    m.assign([("incidents", 0), ("orders", 0)])
    m.add(Buffered(10, "orders", 0, 0, "o0"))
    m.add(Buffered(20, "orders", 0, 1, "o1"))
    assert m.pop(1000) is None
    assert m.wait_ms(1050) == 50
    assert m.pop(1099) is None
    first = m.pop(1100)
    assert first is not None and first.item == "o0"
    # Enforced processing goes on while the other partition stays empty...
    second = m.pop(1100)
    assert second is not None and second.item == "o1"
    # ...and once every partition has data again, waiting starts afresh.
    m.add(Buffered(5, "incidents", 0, 0, "i0"))
    m.add(Buffered(30, "orders", 0, 2, "o2"))
    got = m.pop(1200)
    assert got is not None and got.item == "i0"
    assert m.pop(1200) is None
    assert m.pop(1299) is None
    got = m.pop(1300)
    assert got is not None and got.item == "o2"


def test_behind_partition_blocks_without_limit() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(idle_ms=0)
    m.assign([("incidents", 0), ("orders", 0)])
    m.add(Buffered(10, "orders", 0, 0, "o0"))
    m.set_behind(("incidents", 0), True)
    assert m.pop(10**9) is None
    m.set_behind(("incidents", 0), False)
    got = m.pop(10**9)
    assert got is not None and got.item == "o0"


def test_ties_break_on_topic_partition_offset() -> None:
    recs = [
        Buffered(7, "orders", 1, 0, "orders-1"),
        Buffered(7, "orders", 0, 3, "orders-0"),
        Buffered(7, "incidents", 2, 9, "incidents-2"),
    ]
    assert [b.item for b in merge_sorted([[r] for r in recs])] == [
        "incidents-2",
        "orders-0",
        "orders-1",
    ]


def test_undecodable_heads_are_released_at_once() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(idle_ms=10**9)
    m.assign([("incidents", 0), ("orders", 0)])
    m.add(Buffered(None, "orders", 0, 0, "bad"))
    m.add(Buffered(1, "orders", 0, 1, "good"))
    got = m.pop(0)
    assert got is not None and got.item == "bad"
    assert m.pop(0) is None


@settings(settings.get_profile("merge"))
@given(ts_lists, st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), max_size=20))
@example(raw=[[0, 1], [2]], schedule=[(0, 1), (1, 1)])
def test_a_silent_partition_does_not_stop_the_wait_for_the_others(
    raw: list[list[int | None]], schedule: list[tuple[int, int]]
) -> None:
    """One more partition never receives a record and its idle time ran out long ago;
    the others are behind until their first chunk arrives, then caught up (a live feed),
    each running dry for less than the idle time between chunks: the merge still waits for
    each of them and releases the oracle's order."""
    streams = _streams(raw)
    expected = _oracle(streams)
    merger: EventTimeMerger[str] = EventTimeMerger(idle_ms=1000)
    parts = PARTS[: len(streams)]
    merger.assign([*parts, ("incidents", 1)])
    # A first record goes out after the idle wait for every other partition: the
    # silent one's wait is over from then on.
    merger.add(Buffered(-1, *parts[0], -1, "first"))
    assert merger.pop(0) is None
    first = merger.pop(1000)
    assert first is not None and first.item == "first"
    now = 10**6
    pending = [list(s) for s in streams]
    out: list[str] = []
    for j, p in enumerate(parts):
        merger.set_behind(p, bool(pending[j]))
    tail = [(j, 10**6) for j in range(len(pending))]
    for i, n in [*schedule, *tail]:
        i %= len(pending)
        now += 1
        for rec in pending[i][:n]:
            merger.add(rec)
        del pending[i][:n]
        merger.set_behind(parts[i], False)
        while (b := merger.pop(now)) is not None:
            out.append(b.item)
    out.extend(b.item for b in merger.drain())
    untimed = {b.item for s in streams for b in s if b.ts_ms is None}
    assert sorted(out) == sorted(expected)
    assert [x for x in out if x not in untimed] == [x for x in expected if x not in untimed]


def test_each_partition_waits_from_when_it_ran_dry() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(idle_ms=100)
    m.assign([("incidents", 0), ("orders", 0), ("orders", 1)])
    m.add(Buffered(1, "orders", 0, 0, "a"))
    m.add(Buffered(2, "orders", 1, 0, "b"))
    m.add(Buffered(3, "orders", 1, 1, "c"))
    assert m.pop(0) is None and m.wait_ms(0) == 100  # incidents-0: never any data
    got = m.pop(100)
    assert got is not None and got.item == "a"
    # orders-0 ran dry at 100: the merge waits for it until 200, whatever incidents-0 does.
    assert m.pop(150) is None
    assert m.wait_ms(150) == 50
    m.add(Buffered(4, "orders", 0, 1, "d"))
    got = m.pop(160)
    assert got is not None and got.item == "b"
    # orders-1 still holds c (ts 3) and orders-0 holds d (ts 4): no wait.
    got = m.pop(160)
    assert got is not None and got.item == "c"
    # orders-1 ran dry at 160: d waits until 260.
    assert m.pop(259) is None
    got = m.pop(260)
    assert got is not None and got.item == "d"
