"""Facts stage, the expiry index: fact expiries and timers, due on the watermark.

One binary heap holds both kinds of due item, ordered by (due time, insertion sequence),
so that the clock handles them in time order and ties in the order they were set: O(log n)
per item. A fact retracted early (an incident resolved) or given a new expiry is not
searched for in the heap: its entry is marked stale and skipped when it surfaces, and the
heap is compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from heapq import heappop, heappush
from typing import Any, NamedTuple

__all__ = ["Due", "ExpiryIndex"]

EXPIRE = 0
TIMER = 1


class Due(NamedTuple):
    """An item whose time has come: ``kind`` is ``EXPIRE`` (retract ``fact``) or
    ``TIMER`` (assert ``fact`` for one agenda run)."""

    at_ms: int
    kind: int
    fact: Any


class ExpiryIndex:
    """Pending expiries (at most one per fact) and timers, popped in time order."""

    __slots__ = ("_heap", "_live", "_seq", "_stale")

    def __init__(self) -> None:
        # (due ms, sequence, kind, fact); the sequence makes entries totally ordered and
        # never compares facts.
        self._heap: list[tuple[int, int, int, Any]] = []
        # id(fact) -> sequence of its current expiry entry. The heap entry keeps the fact
        # alive, so its id cannot be reused while the entry exists.
        self._live: dict[int, int] = {}
        self._seq = 0
        self._stale = 0

    def __len__(self) -> int:
        return len(self._heap) - self._stale

    def expire_at(self, fact: Any, at_ms: int) -> None:
        """Retract ``fact`` when the watermark reaches ``at_ms`` (replaces an earlier expiry)."""
        live = self._live
        key = id(fact)
        seq = self._seq = self._seq + 1
        if key in live:
            self._stale += 1
            live[key] = seq
            heappush(self._heap, (at_ms, seq, EXPIRE, fact))
            self._maybe_compact()
        else:
            live[key] = seq
            heappush(self._heap, (at_ms, seq, EXPIRE, fact))

    def expiry_of(self, fact: Any) -> int | None:
        """The pending expiry of ``fact``, if any (a linear scan: for tests and tools)."""
        seq = self._live.get(id(fact))
        if seq is None:
            return None
        return next(e[0] for e in self._heap if e[1] == seq)

    def cancel(self, fact: Any) -> None:
        """Forget the expiry of ``fact`` (it was retracted some other way)."""
        if self._live.pop(id(fact), None) is not None:
            self._stale += 1
            self._maybe_compact()

    def schedule(self, at_ms: int, fact: Any) -> None:
        """Assert ``fact`` (a timer) when the watermark reaches ``at_ms``."""
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, TIMER, fact))

    def next_due_ms(self) -> int | None:
        """The time of the earliest pending item, if any."""
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def due(self, watermark_ms: int) -> bool:
        """Whether an item may be due at or before ``watermark_ms`` (cheap; may be a stale
        entry, which ``pop_due`` then skips)."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= watermark_ms

    def pop_due(self, watermark_ms: int) -> Due | None:
        """The earliest item due at or before ``watermark_ms``, removed; else ``None``."""
        heap = self._heap
        if not heap or heap[0][0] > watermark_ms:
            return None  # the common case, decided without touching stale entries
        self._drop_stale_head()
        if not heap or heap[0][0] > watermark_ms:
            return None
        at_ms, _seq, kind, fact = heapq.heappop(heap)
        if kind == EXPIRE:
            del self._live[id(fact)]
        return Due(at_ms, kind, fact)

    def pop_entry(self, watermark_ms: int) -> tuple[int, int, Any] | None:
        """``pop_due`` as a plain ``(at_ms, kind, fact)`` tuple (the pipeline's hot path)."""
        heap = self._heap
        if not heap or heap[0][0] > watermark_ms:
            return None
        if self._stale:
            # Stale entries (of facts retracted early, e.g. resolved incidents) may sit
            # deep in the heap for days: test the head here, call out only when it is one.
            head = heap[0]
            if head[2] != TIMER and self._live.get(id(head[3])) != head[1]:
                self._drop_stale_head()
                if not heap or heap[0][0] > watermark_ms:
                    return None
        at_ms, _seq, kind, fact = heappop(heap)
        if kind == EXPIRE:
            del self._live[id(fact)]
        return at_ms, kind, fact

    def drain(self, watermark_ms: int) -> Iterator[Due]:
        """Pop due items one by one; items added while iterating are seen too."""
        while (due := self.pop_due(watermark_ms)) is not None:
            yield due

    def _drop_stale_head(self) -> None:
        heap = self._heap
        live = self._live
        while heap:
            _at, seq, kind, fact = heap[0]
            if kind == TIMER or live.get(id(fact)) == seq:
                return
            heapq.heappop(heap)
            self._stale -= 1

    def _maybe_compact(self) -> None:
        if self._stale > 1024 and self._stale * 2 > len(self._heap):
            live = self._live
            self._heap = [e for e in self._heap if e[2] == TIMER or live.get(id(e[3])) == e[1]]
            heapq.heapify(self._heap)
            self._stale = 0
