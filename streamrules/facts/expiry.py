"""Facts stage, the expiry index: fact expiries and timers, due on the watermark.

Items come out ordered by (due time, insertion sequence), so that the clock handles them in
time order and ties in the order they were set. Most items are set in due order already
(every order expires one hour after its ``ts``, and ``ts`` moves forward; every incident
seven days after): such an item is appended to a *lane*, a queue sorted by construction,
where adding and taking it is O(1) and touches memory in order. An item that fits behind
no lane (a late order, a timer) goes to a binary heap, O(log n). The next item is the least
of the lanes' heads and the heap's. Replaying the soak's calls (36,000 live orders) this
costs ~2.5 us per event where a heap alone costs 2.3 to 6 us, depending on how scattered
its entries lie in memory (in a long run they are: every level of the heap misses the
cache); on a small stream it costs ~1% more instructions than the heap.

A fact retracted early (an incident resolved) or given a new expiry is not searched for:
its entry is marked stale and skipped when it surfaces, and the lanes and the heap are
compacted when stale entries outnumber live ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heapify, heappop, heappush
from typing import Any, NamedTuple

__all__ = ["Due", "ExpiryIndex"]

EXPIRE = 0
TIMER = 1
# Lanes beyond the first few would each cost every pop a comparison, and what does not fit
# behind a handful of them is out of order anyway: the heap takes it.
_MAX_LANES = 4
_NEVER = 1 << 62  # the due time of an empty index (epoch ms: far beyond any event)

_Entry = tuple[int, int, int, Any]  # (due ms, sequence, kind, fact)


class Due(NamedTuple):
    """An item whose time has come: ``kind`` is ``EXPIRE`` (retract ``fact``) or
    ``TIMER`` (assert ``fact`` for one agenda run)."""

    at_ms: int
    kind: int
    fact: Any


class ExpiryIndex:
    """Pending expiries (at most one per fact) and timers, popped in time order."""

    __slots__ = ("_heap", "_lanes", "_live", "_next_ms", "_seq", "_stale")

    def __init__(self) -> None:
        # Entries (due ms, sequence, kind, fact); the sequence makes them totally ordered,
        # so that a fact is never compared.
        self._lanes: list[deque[_Entry]] = []
        self._heap: list[_Entry] = []
        # id(fact) -> sequence of its current expiry entry. The entry keeps the fact
        # alive, so its id cannot be reused while the entry exists.
        self._live: dict[int, int] = {}
        self._seq = 0
        self._stale = 0
        # The due time of the earliest entry (stale or not), _NEVER when there is none:
        # "is anything due?" is asked twice per event and answered by one comparison.
        self._next_ms = _NEVER

    def __len__(self) -> int:
        return sum(map(len, self._lanes)) + len(self._heap) - self._stale

    def expire_at(self, fact: Any, at_ms: int) -> None:
        """Retract ``fact`` when the watermark reaches ``at_ms`` (replaces an earlier expiry)."""
        live = self._live
        key = id(fact)
        seq = self._seq = self._seq + 1
        if key in live:
            self._stale += 1
            live[key] = seq
            self._push((at_ms, seq, EXPIRE, fact))
            self._maybe_compact()
        else:
            live[key] = seq
            self._push((at_ms, seq, EXPIRE, fact))

    def expiry_of(self, fact: Any) -> int | None:
        """The pending expiry of ``fact``, if any (a linear scan: for tests and tools)."""
        seq = self._live.get(id(fact))
        if seq is None:
            return None
        return next(e[0] for e in self._entries() if e[1] == seq)

    def cancel(self, fact: Any) -> None:
        """Forget the expiry of ``fact`` (it was retracted some other way)."""
        if self._live.pop(id(fact), None) is not None:
            self._stale += 1
            self._maybe_compact()

    def schedule(self, at_ms: int, fact: Any) -> None:
        """Assert ``fact`` (a timer) when the watermark reaches ``at_ms``."""
        self._seq += 1
        self._push((at_ms, self._seq, TIMER, fact))

    def next_due_ms(self) -> int | None:
        """The time of the earliest pending item, if any."""
        self._drop_stale_head()
        return None if self._next_ms == _NEVER else self._next_ms

    def due(self, watermark_ms: int) -> bool:
        """Whether an item may be due at or before ``watermark_ms`` (cheap; may be a stale
        entry, which ``pop_due`` then skips)."""
        return self._next_ms <= watermark_ms

    def pop_due(self, watermark_ms: int) -> Due | None:
        """The earliest item due at or before ``watermark_ms``, removed; else ``None``."""
        entry = self.pop_entry(watermark_ms)
        return None if entry is None else Due(*entry)

    def pop_entry(self, watermark_ms: int) -> tuple[int, int, Any] | None:
        """``pop_due`` as a plain ``(at_ms, kind, fact)`` tuple (the pipeline's hot path)."""
        while self._next_ms <= watermark_ms:
            at_ms, seq, kind, fact = self._take()
            if kind == EXPIRE:
                live = self._live
                if live.get(id(fact)) != seq:  # retracted early or given a new expiry
                    self._stale -= 1
                    continue
                del live[id(fact)]
            return at_ms, kind, fact
        return None

    def drain(self, watermark_ms: int) -> Iterator[Due]:
        """Pop due items one by one; items added while iterating are seen too."""
        while (due := self.pop_due(watermark_ms)) is not None:
            yield due

    # -- the lanes and the heap --------------------------------------------------------------

    def _push(self, entry: _Entry) -> None:
        at_ms = entry[0]
        lanes = self._lanes
        for lane in lanes:
            if not lane or lane[-1][0] <= at_ms:  # the sequence only grows: still sorted
                lane.append(entry)
                break
        else:
            if len(lanes) < _MAX_LANES:
                lanes.append(deque([entry]))
            else:
                heappush(self._heap, entry)
        if at_ms < self._next_ms:
            self._next_ms = at_ms

    def _take(self) -> _Entry:
        """Remove and return the earliest entry (there is one: ``_next_ms`` says so)."""
        # One pass over the heads: the earliest is taken, the due time of the next one is
        # the least of the other heads and whatever comes up behind the one taken.
        heap = self._heap
        best = heap[0] if heap else None
        source: deque[_Entry] | None = None  # None: the heap
        others = _NEVER
        for lane in self._lanes:
            if lane:
                head = lane[0]
                if best is None or head < best:
                    if best is not None and best[0] < others:
                        others = best[0]
                    best, source = head, lane
                elif head[0] < others:
                    others = head[0]
        if source is None:
            entry = heappop(heap)
            behind = heap[0][0] if heap else _NEVER
        else:
            entry = source.popleft()
            behind = source[0][0] if source else _NEVER
        self._next_ms = behind if behind < others else others
        return entry

    def _earliest(self) -> int:
        first = self._heap[0][0] if self._heap else _NEVER
        for lane in self._lanes:
            if lane and lane[0][0] < first:
                first = lane[0][0]
        return first

    def _entries(self) -> Iterator[_Entry]:
        for lane in self._lanes:
            yield from lane
        yield from self._heap

    def _is_current(self, entry: _Entry) -> bool:
        return entry[2] == TIMER or self._live.get(id(entry[3])) == entry[1]

    def _drop_stale_head(self) -> None:
        while self._next_ms != _NEVER:
            best: _Entry | None = None
            source: deque[_Entry] | list[_Entry] | None = None
            for lane in self._lanes:
                if lane and (best is None or lane[0] < best):
                    best, source = lane[0], lane
            heap = self._heap
            if heap and (best is None or heap[0] < best):
                best, source = heap[0], heap
            assert best is not None
            if self._is_current(best):
                return
            if source is heap:
                heappop(heap)
            else:
                assert isinstance(source, deque)
                source.popleft()
            self._stale -= 1
            self._next_ms = self._earliest()

    def _maybe_compact(self) -> None:
        if self._stale > 1024 and self._stale * 2 > len(self) + self._stale:
            current = self._is_current
            self._lanes = [deque(e for e in lane if current(e)) for lane in self._lanes]
            self._heap = [e for e in self._heap if current(e)]
            heapify(self._heap)
            self._stale = 0
            self._next_ms = self._earliest()
