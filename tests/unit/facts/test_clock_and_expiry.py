"""The event-time clock and the expiry index, on their own."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrules.errors import ConfigError
from streamrules.facts.clock import EventClock
from streamrules.facts.expiry import EXPIRE, TIMER, ExpiryIndex


def test_watermark_is_the_largest_ts_and_never_moves_back() -> None:
    clock = EventClock()
    assert clock.watermark_ms is None
    assert not clock.is_late(0)
    assert clock.advance(1000) == 1000
    assert clock.advance(500) == 1000
    assert clock.watermark_ms == 1000
    assert clock.advance(2000) == 2000


def test_lateness_boundary_is_watermark_minus_allowed_lateness() -> None:
    clock = EventClock(60_000)
    clock.advance(100_000)
    assert not clock.is_late(40_000)  # exactly watermark - lateness: applied
    assert clock.is_late(39_999)
    assert not clock.is_late(100_001)


def test_default_lateness_is_60_s_and_negative_is_refused() -> None:
    assert EventClock().allowed_lateness_ms == 60_000
    with pytest.raises(ConfigError, match="allowed lateness"):
        EventClock(-1)


def test_items_come_out_in_time_order_ties_in_insertion_order() -> None:
    index = ExpiryIndex()
    a, b, c = object(), object(), object()
    index.expire_at(a, 30)
    index.schedule(10, "t1")
    index.expire_at(b, 10)
    index.schedule(20, "t2")
    index.expire_at(c, 20)
    assert index.pop_due(5) is None
    got = [(d.at_ms, d.kind, d.fact) for d in index.drain(25)]
    assert got == [(10, TIMER, "t1"), (10, EXPIRE, b), (20, TIMER, "t2"), (20, EXPIRE, c)]
    assert index.next_due_ms() == 30
    assert len(index) == 1


def test_cancel_and_reschedule() -> None:
    index = ExpiryIndex()
    a, b = object(), object()
    index.expire_at(a, 10)
    index.expire_at(b, 20)
    index.cancel(a)
    index.cancel(a)  # twice is harmless
    index.expire_at(b, 40)  # a new expiry replaces the old one
    assert index.expiry_of(b) == 40
    assert index.expiry_of(a) is None
    assert list(index.drain(30)) == []
    assert [d.fact for d in index.drain(40)] == [b]
    assert len(index) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["expire", "timer", "cancel", "pop", "pop_entry"]),
            st.integers(0, 50),
            st.integers(0, 7),
        ),
        max_size=80,
    )
)
def test_index_agrees_with_a_sorted_list(ops: list[tuple[str, int, int]]) -> None:
    index = ExpiryIndex()
    facts = [object() for _ in range(8)]
    # oracle: fact -> (time, seq) for expiries; list of (time, seq, name) for timers
    expiries: dict[int, tuple[int, int]] = {}
    timers: list[tuple[int, int, str]] = []
    for seq, (op, t, f) in enumerate(ops):
        if op == "expire":
            index.expire_at(facts[f], t)
            expiries[f] = (t, seq)
        elif op == "timer":
            index.schedule(t, f"timer{seq}")
            timers.append((t, seq, f"timer{seq}"))
        elif op == "cancel":
            index.cancel(facts[f])
            expiries.pop(f, None)
        else:
            pending = sorted(
                [(tt, s, facts[ff]) for ff, (tt, s) in expiries.items()]
                + [(tt, s, name) for tt, s, name in timers],
                key=lambda e: (e[0], e[1]),
            )
            want = [(tt, x) for tt, _s, x in pending if tt <= t]
            if op == "pop":
                got = [(d.at_ms, d.fact) for d in index.drain(t)]
            else:  # the pipeline's path: plain tuples, the stale-head test inline
                got = []
                while (entry := index.pop_entry(t)) is not None:
                    got.append((entry[0], entry[2]))
            assert got == want
            expiries = {ff: v for ff, v in expiries.items() if v[0] > t}
            timers = [e for e in timers if e[0] > t]
        assert len(index) == len(expiries) + len(timers)


def test_many_out_of_order_items_and_a_compaction_agree_with_sorting() -> None:
    # Enough items out of order to fill every lane and the heap, and enough early
    # cancellations (> 1024, more than half) to compact them.
    rng = random.Random(3)
    index = ExpiryIndex()
    facts = [object() for _ in range(3000)]
    expected: dict[int, tuple[int, int]] = {}
    seq = 0
    for i, fact in enumerate(facts):
        at = i * 10 + rng.choice([0, 0, 0, -25, -700, 50_000])
        index.expire_at(fact, at)
        seq += 1
        expected[id(fact)] = (at, seq)
        if i % 7 == 0:
            index.schedule(at + 3, f"t{i}")
            seq += 1
            expected[-seq] = (at + 3, seq)
    for fact in facts[::3] + facts[1::3]:
        index.cancel(fact)
        del expected[id(fact)]
    assert index._stale < 1024  # 2,000 cancelled: compacted on the way
    assert len(index) == len(expected)
    want = [at for at, _seq in sorted(expected.values())]
    got = []
    while (entry := index.pop_entry(10**9)) is not None:
        got.append(entry[0])
    assert got == want
    assert index.next_due_ms() is None and not index.due(10**9)
