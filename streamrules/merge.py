"""Transport stage, ordering: merge buffered input partitions in event-time order.

Contract section 5: the next record processed is the buffered head with the smallest event
time (ties: topic name, partition, offset). A partition with nothing buffered could still
deliver an earlier record, so the merge waits for it, as Kafka Streams does
(``max.task.idle.ms``, KIP-695):

- an empty partition that is known to be *behind* (the broker has records we have not
  fetched yet) blocks the merge: its data is on the way;
- an empty partition that is caught up blocks it for at most ``idle_ms`` of processing
  time, counted from the moment the merge first had to wait for it; after that the merge
  goes on without it until every partition has data again.

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


class EventTimeMerger(Generic[T]):
    """Buffers records per partition and releases them in event-time order."""

    def __init__(self, idle_ms: int) -> None:
        self.idle_ms = idle_ms
        self._parts: dict[PartitionId, _Partition[T]] = {}
        self._waiting_since: int | None = None
        self._enforced = False

    # -- assignment ------------------------------------------------------------------
    def assign(self, partitions: Iterable[PartitionId]) -> None:
        """Set the partitions to merge; buffers of partitions no longer listed are dropped."""
        wanted = set(partitions)
        self._parts = {p: self._parts.get(p) or _Partition() for p in sorted(wanted)}
        self._waiting_since = None
        self._enforced = False

    @property
    def partitions(self) -> tuple[PartitionId, ...]:
        return tuple(self._parts)

    def clear(self) -> None:
        for part in self._parts.values():
            part.queue.clear()
        self._waiting_since = None
        self._enforced = False

    # -- input -----------------------------------------------------------------------
    def add(self, record: Buffered[T]) -> None:
        part = self._parts.get((record.topic, record.partition))
        if part is None:
            raise KeyError(f"partition {record.topic}-{record.partition} is not assigned")
        part.queue.append(record)

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

    # -- output ----------------------------------------------------------------------
    def pop(self, now_ms: int) -> Buffered[T] | None:
        """The next record in merged order, or ``None`` if the merge must wait."""
        best: Buffered[T] | None = None
        best_part: _Partition[T] | None = None
        blocked_by_behind = False
        blocked = False
        for part in self._parts.values():
            if not part.queue:
                blocked = True
                blocked_by_behind = blocked_by_behind or part.behind
                continue
            head = part.queue[0]
            if head.ts_ms is None:
                part.queue.popleft()
                return head
            if best is None or head.sort_key() < best.sort_key():
                best, best_part = head, part
        if best is None or best_part is None:
            return None
        if not blocked:
            self._waiting_since = None
            self._enforced = False
        elif blocked_by_behind:
            return None
        elif not self._enforced:
            if self._waiting_since is None:
                self._waiting_since = now_ms
            if now_ms - self._waiting_since < self.idle_ms:
                return None
            self._enforced = True
        best_part.queue.popleft()
        return best

    def drain(self) -> Iterator[Buffered[T]]:
        """Everything buffered, in merged order, without waiting for empty partitions."""
        while True:
            heads = [p for p in self._parts.values() if p.queue]
            if not heads:
                return
            part = min(heads, key=lambda p: p.queue[0].sort_key())
            yield part.queue.popleft()

    def wait_ms(self, now_ms: int) -> int | None:
        """How long until ``pop`` may release something without new input (None: unknown)."""
        if self._waiting_since is None or self._enforced:
            return None
        return max(0, self.idle_ms - (now_ms - self._waiting_since))


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
