"""Publication frontiers (streamrules.frontier): commit metadata that round-trips, only
grows when merged, and falls back to the plain offset for metadata it cannot read."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrules.frontier import Frontier, commit_points

_tps = st.tuples(st.sampled_from(["orders", "incidents", "my.orders-v2"]), st.integers(0, 40))
_frontiers = st.builds(
    Frontier,
    st.none() | st.integers(0, 2**53),
    st.dictionaries(_tps, st.integers(0, 2**53), max_size=12),
)


@given(_frontiers)
def test_metadata_round_trips_and_stays_small(f: Frontier) -> None:
    tp = ("orders", 0)
    text = f.encode()
    assert len(text.encode()) < 4096  # offset.metadata.max.bytes' default
    back = Frontier.decode(tp, f.positions.get(tp, 0), text)
    assert back.watermark_ms == f.watermark_ms
    assert dict(back.positions) == {**f.positions, tp: f.positions.get(tp, 0)}


@given(_frontiers, _frontiers)
def test_merged_is_the_larger_of_both_everywhere(a: Frontier, b: Frontier) -> None:
    m = a.merged(b)
    other = b.merged(a)
    assert dict(m.positions) == dict(other.positions) and m.watermark_ms == other.watermark_ms
    for f in (a, b):
        for tp, off in f.positions.items():
            assert m.positions[tp] >= off
            assert m.published(tp, off - 1) or off == 0
        if f.watermark_ms is not None:
            assert m.fired(f.watermark_ms)
    assert set(m.positions) == set(a.positions) | set(b.positions)


def test_what_counts_as_published() -> None:
    f = Frontier(1_000, {("incidents", 2): 10})
    assert f.published(("incidents", 2), 9) and not f.published(("incidents", 2), 10)
    assert not f.published(("incidents", 1), 0)  # a partition it never read
    assert f.fired(1_000) and not f.fired(1_001)
    assert not Frontier(None, {}).fired(0)


@pytest.mark.parametrize(
    "metadata",
    ["", "not json", "[1, 2]", '{"v": 2, "w": 1, "p": {}}', '{"v": 1, "w": "x", "p": {}}'],
)
def test_unreadable_metadata_means_the_offset_alone(
    metadata: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        f = Frontier.decode(("orders", 3), 17, metadata)
    assert f == Frontier(None, {("orders", 3): 17})
    assert bool(metadata) == any("not a streamrules frontier" in r.message for r in caplog.records)


def test_a_batch_commits_every_owned_partition_with_the_merged_frontier() -> None:
    """commit_points: the next offset processed, else the last commit, else where the
    rebuild started the partition; every owned partition carries the frontier (its old
    one merged with this instance's), also one whose offset did not move."""
    done, held, fresh = ("orders", 0), ("orders", 1), ("incidents", 2)
    own = Frontier(5_000, {done: 40, ("incidents", 0): 7})
    inherited = Frontier(9_000, {held: 12, ("incidents", 0): 3})
    frontiers = {held: inherited}
    points = commit_points(own, [done, held, fresh], {done: 30, held: 12}, {fresh: 4}, frontiers)
    assert {tp: off for tp, (off, _) in points.items()} == {done: 40, held: 12, fresh: 4}
    merged = Frontier.decode(held, 12, points[held][1])
    assert merged.watermark_ms == 9_000  # never lowered by a rebuild's smaller watermark
    assert merged.positions[("incidents", 0)] == 7 and merged.positions[done] == 40
    assert frontiers[held] == merged and frontiers[done] == own
    assert Frontier.decode(fresh, 4, points[fresh][1]).positions[done] == 40
