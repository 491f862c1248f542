"""Service stage, publication frontiers: what an instance had published when it committed.

Every instance reads every incidents partition (global incidents), so a decision can be
fired by an instance other than the one that published it before a rebalance or crash:
an escalation fired by the clock, or a ``payments_hold`` fired when an incident opens.
The offset of the cause is then no guide (it may sit in a partition the new owner never
committed). So each commit carries, as Kafka commit metadata of every owned partition,
the committing instance's *frontier*: its watermark and the next offset it would process
in every partition it read. Whoever takes a partition over reads that frontier and
suppresses the decisions homed on that partition that the previous owner had published:

- a decision caused by a record ``(tp, offset)``: published iff ``offset`` is below the
  frontier's position of ``tp`` (each partition is processed in offset order);
- a decision caused by the clock at time ``t``: published iff ``t`` is at or below the
  frontier's watermark (everything due up to the watermark has fired).

A frontier only grows: an instance commits the larger of what it inherited and what it
did itself, so a rebuild that re-reads (and publishes nothing) never lowers it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, MutableMapping
from dataclasses import dataclass, field

import orjson

from streamrules.transport.base import TopicPartition

__all__ = ["Frontier", "commit_points"]

log = logging.getLogger(__name__)

# The metadata's format version: a commit by another version (or another tool) is read
# as a plain offset.
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Frontier:
    """An instance's progress when it committed: watermark and next offset per partition."""

    watermark_ms: int | None = None
    positions: Mapping[TopicPartition, int] = field(default_factory=dict)

    def published(self, tp: TopicPartition, offset: int) -> bool:
        """Whether a decision caused by record ``offset`` of ``tp`` was published."""
        return offset < self.positions.get(tp, -1)

    def fired(self, at_ms: int) -> bool:
        """Whether a clock firing at ``at_ms`` was published (None watermark: unknown,
        so not)."""
        return self.watermark_ms is not None and at_ms <= self.watermark_ms

    def merged(self, other: Frontier | None) -> Frontier:
        """The larger of two frontiers, component by component."""
        if other is None:
            return self
        wm = self.watermark_ms
        if other.watermark_ms is not None and (wm is None or other.watermark_ms > wm):
            wm = other.watermark_ms
        positions = dict(other.positions)
        for tp, off in self.positions.items():
            if off > positions.get(tp, -1):
                positions[tp] = off
        return Frontier(wm, positions)

    def encode(self) -> str:
        """As commit metadata (compact JSON, well below the broker's 4 KiB default)."""
        by_topic: dict[str, dict[str, int]] = {}
        for (topic, partition), off in sorted(self.positions.items()):
            by_topic.setdefault(topic, {})[str(partition)] = off
        return orjson.dumps({"v": _VERSION, "w": self.watermark_ms, "p": by_topic}).decode()

    @classmethod
    def decode(cls, tp: TopicPartition, offset: int, metadata: str) -> Frontier:
        """The frontier committed with ``offset`` for ``tp``. Without (readable) metadata,
        only the offset is known: records of ``tp`` below it were published."""
        plain = cls(None, {tp: offset})
        if not metadata:
            return plain
        try:
            data = orjson.loads(metadata)
            if not isinstance(data, dict) or data.get("v") != _VERSION:
                raise ValueError("not a streamrules frontier")
            wm = data["w"]
            if wm is not None and type(wm) is not int:
                raise ValueError("watermark is not an integer")
            positions: dict[TopicPartition, int] = {}
            for topic, parts in data["p"].items():
                for partition, off in parts.items():
                    if type(off) is not int:
                        raise ValueError("offset is not an integer")
                    positions[(str(topic), int(partition))] = off
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "commit metadata of %s-%d is not a streamrules frontier (%s): using its "
                "offset only",
                tp[0],
                tp[1],
                exc,
            )
            return plain
        # The committed offset itself is the surest position of its own partition.
        return cls(wm, positions).merged(plain)


def commit_points(
    own: Frontier,
    owned: Collection[TopicPartition],
    committed: Mapping[TopicPartition, int],
    started_at: Mapping[TopicPartition, int],
    frontiers: MutableMapping[TopicPartition, Frontier],
) -> dict[TopicPartition, tuple[int, str]]:
    """What a batch commits: every owned partition, also one whose offset did not move
    (the frontier did: global partitions, the clock), at the next offset processed (or
    the last commit, or where the rebuild started it), with ``own`` merged into the
    frontier it had (``frontiers`` is updated) as metadata."""
    points: dict[TopicPartition, tuple[int, str]] = {}
    for tp in owned:
        off = max(own.positions.get(tp, -1), committed.get(tp, -1))
        if off < 0:
            off = started_at.get(tp, 0)
        frontier = frontiers[tp] = own.merged(frontiers.get(tp))
        points[tp] = (off, frontier.encode())
    return points
