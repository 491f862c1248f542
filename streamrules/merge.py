"""Transport stage, ordering: merge buffered input partitions in event-time order.

Contract section 5: the next record processed is the buffered head with the smallest event
time (ties: topic name, partition, offset). A partition with nothing buffered could still
deliver an earlier record, so the merge waits for it, per partition, as Kafka Streams does
(``max.task.idle.ms``, KIP-353 and KIP-695):

- an empty partition that is known to be *behind* (the broker has records we have not
  fetched yet) blocks the merge without limit: its data is on the way;
- an empty partition that is caught up blocks it for at most ``idle_ms`` of processing
  time since *that* partition became empty (its last buffered record was released, or it
  was assigned); after that the merge goes on without it until it has data again.

Each partition keeps its own clock, so a partition that never receives a record stops
blocking ``idle_ms`` after assignment and never changes how long the merge waits for the
others: when a busy partition runs dry, the merge waits for it afresh.

Records without an event time (they did not decode and will become dead letters) are
released as soon as they reach the head of their partition: they change no state, so their
place in the merged order does not matter. Pure: the caller passes the processing-time
clock (``now_ms``) in, so tests drive it by hand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Buffered", "EventTimeMerger", "PartitionId", "merge_sorted"]

T = TypeVar("T")
PartitionId = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True, slots=True)
class Buffered(Generic[T]):
    """One buffered record: its merge key and the caller's item."""

    ts_ms: int | None  # None: no event time (undecodable)
    topic: str
    partition: int
    offset: int
    item: T

    def sort_key(self) -> tuple[int, str, int, int]:
        # Undecodable records have no order of their own; put them first among heads.
        ts = self.ts_ms if self.ts_ms is not None else -(2**63)
        return (ts, self.topic, self.partition, self.offset)


@dataclass(slots=True)
class _Partition(Generic[T]):
    queue: deque[Buffered[T]] = field(default_factory=deque)
    behind: bool = False
    # Processing time at which the queue was last seen to become empty (None: not known
    # yet; the next pop starts the clock).
    empty_since: int | None = None


class EventTimeMerger(Generic[T]):
    """Buffers records per partition and releases them in event-time order."""

    def __init__(self, idle_ms: int) -> None:
        self.idle_ms = idle_ms
        self._parts: dict[PartitionId, _Partition[T]] = {}

    # -- assignment ------------------------------------------------------------------
    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Set the partitions to merge; buffers of partitions no longer listed are dropped."""
        wanted = set(partitions)
        self._parts = {p: self._parts.get(p) or _Partition() for p in sorted(wanted)}
        for part in self._parts.values():
            part.empty_since = None

    @property
    def partitions(self) -> tuple[PartitionId, ...]:
        return tuple(self._parts)

    def clear(self) -> None:
        for part in self._parts.values():
            part.queue.clear()
            part.empty_since = None

    # -- input -----------------------------------------------------------------------
    def add(self, record: Buffered[T]) -> None:
        part = self._parts.get((record.topic, record.partition))
        if part is None:
            raise KeyError(f"partition {record.topic}-{record.partition} is not assigned")
        part.queue.append(record)
        part.empty_since = None

    def set_behind(self, partition: PartitionId, behind: bool) -> None:
        """Tell whether the broker holds records of ``partition`` not fetched yet."""
        part = self._parts.get(partition)
        if part is not None:
            part.behind = behind

    def buffered(self, partition: PartitionId | None = None) -> int:
        if partition is not None:
            part = self._parts.get(partition)
            return len(part.queue) if part else 0
        return sum(len(p.queue) for p in self._parts.values())

    def wanting(self, limit: int) -> list[PartitionId]:
        """The partitions holding fewer than ``limit`` records (the ones worth fetching)."""
        return [p for p, part in self._parts.items() if len(part.queue) < limit]

    # -- output ----------------------------------------------------------------------
    def _head(self, now_ms: int) -> _Partition[T] | None:
        """The partition whose head goes next, or None if the merge must wait."""
        best: Buffered[T] | None = None
        best_ts = 0
        best_part: _Partition[T] | None = None
        blocked = False
        idle_ms = self.idle_ms
        for part in self._parts.values():
            queue = part.queue
            if not queue:
                if part.behind:
                    blocked = True
                    continue
                since = part.empty_since
                if since is None:
                    part.empty_since = since = now_ms
                if now_ms - since < idle_ms:
                    blocked = True
                continue
            head = queue[0]
            ts = head.ts_ms
            if ts is None:
                return part
            # Once per partition per record: the event times decide, the full sort key
            # only on a tie.
            if (
                best is None
                or ts < best_ts
                or (ts == best_ts and head.sort_key() < best.sort_key())
            ):
                best, best_ts, best_part = head, ts, part
        return None if blocked else best_part

    def pop(self, now_ms: int) -> Buffered[T] | None:
        """The next record in merged order, or ``None`` if the merge must wait."""
        part = self._head(now_ms)
        if part is None:
            return None
        record = part.queue.popleft()
        if not part.queue:
            part.empty_since = now_ms
        return record

    def ready(self, now_ms: int) -> bool:
        """Whether ``pop`` would release a record now."""
        return self._head(now_ms) is not None

    def drain(self) -> Iterator[Buffered[T]]:
        """Everything buffered, in merged order, without waiting for empty partitions."""
        while True:
            heads = [p for p in self._parts.values() if p.queue]
            if not heads:
                return
            part = min(heads, key=lambda p: p.queue[0].sort_key())
            yield part.queue.popleft()

    def wait_ms(self, now_ms: int) -> int | None:
        """How long until an idle wait ends and ``pop`` may release something without new
        input (None: no idle wait is running, only new input can unblock the merge)."""
        if not any(p.queue for p in self._parts.values()):
            return None
        waits = [
            self.idle_ms - (now_ms - p.empty_since)
            for p in self._parts.values()
            if not p.queue and not p.behind and p.empty_since is not None
        ]
        remaining = [w for w in waits if w > 0]
        return min(remaining) if remaining else None


def merge_sorted(streams: Iterable[Iterable[Buffered[T]]]) -> list[Buffered[T]]:
    """The merged order of complete partitions (what the merge gives when nothing waits).

    For tests and tools that need to know the order in which ``run`` processes a set of
    partitions already fully written.
    """
    merger: EventTimeMerger[T] = EventTimeMerger(idle_ms=0)
    lists = [list(s) for s in streams]
    merger.assign({(r.topic, r.partition) for s in lists for r in s})
    for s in lists:
        for r in s:
            merger.add(r)
    return list(merger.drain())
