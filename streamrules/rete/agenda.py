"""Agenda (engine stage 3): the conflict set, its deterministic order, matches and
listener hooks.

Order: salience (higher first), then recency of the newest fact in the match (newer
first), then production order (the order productions were added), then the newer
activation first. A heap with lazy deletion keeps push and pop logarithmic; nothing is
random.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from mypy_extensions import mypyc_attr

from streamrules.errors import RuleError
from streamrules.rete.fact import Fact, user_value

if TYPE_CHECKING:
    from streamrules.rete.beta import PNode
    from streamrules.rete.network import ReteNetwork
    from streamrules.rete.production import Production
    from streamrules.rete.tokens import Token


def sort_key(t: Token) -> tuple[int, int, int, int]:
    node: PNode = t.node  # type: ignore[assignment]
    return (-node.prod.salience, -t.recency, node.order, -t.count)


def _pending(heap: list[tuple[int, int, int, int, Token]]) -> list[Any]:
    """The heap entries still pending (an entry is stale once its token died, fired or
    was renewed: its count changed). One comprehension, no call per entry."""
    return [e for e in heap if not (t := e[4]).dead and not t.fired and e[3] == -t.count]


class Agenda:
    """Pending activations (production-node tokens not yet fired).

    New activations wait in ``fresh`` and enter the heap only when the next one is
    wanted: most activations of a busy change are deleted again before that (a modify
    withdraws and re-makes matches), and then never cost a heap push.
    """

    __slots__ = ("fresh", "heap", "holding", "live", "renewed", "seq")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, int, int, Token]] = []
        self.fresh: list[Token] = []
        self.live = 0
        self.seq = 0
        # A match renewed in place by a modify may wait in ``fresh`` twice, and its heap
        # entry from before is stale (its count changed): entries are checked on pop.
        self.renewed = False
        # The production nodes that hold matches (fired or not), kept by the nodes as
        # their first match comes and their last goes (a test and, on those changes
        # only, a dict insertion or deletion), so that reading the matches costs what
        # they are, not the number of productions.
        self.holding: dict[PNode, None] = {}

    def push(self, t: Token) -> None:
        self.seq += 1
        t.count = self.seq
        fresh = self.fresh
        fresh.append(t)
        self.live += 1
        if len(fresh) > 256 + 2 * self.live:
            self.compact()

    def gone(self) -> None:
        """An activation left the agenda (fired or deleted)."""
        self.live -= 1

    def drop_stale(self) -> None:
        """Nothing is pending (``live == 0``): all the lists still hold is stale."""
        self.fresh = []
        self.heap = []
        self.renewed = False

    def _fresh(self) -> list[Token]:
        fresh = self.fresh
        if self.renewed:
            self.renewed = False
            fresh = list(dict.fromkeys(fresh))
        return [t for t in fresh if not t.dead and not t.fired]

    def compact(self) -> None:
        """Drop what deleted activations left behind.

        Deleting an activation costs nothing here: ``fresh`` is compacted when it grows
        (by pushes) well beyond the live activations, the heap when ``pop`` finds it so.
        """
        self.fresh = self._fresh()
        self.heap = _pending(self.heap)
        heapq.heapify(self.heap)

    def pop(self) -> Token | None:
        heap = self.heap
        fresh = self.fresh
        if fresh:
            self.fresh = []
            if not heap and len(fresh) == 1:  # a stream's usual case: one new activation
                t = fresh[0]
                return t if not t.dead and not t.fired else None
            if len(heap) > 64 + 4 * self.live:
                heap = self.heap = _pending(heap)
                heapq.heapify(heap)
            if self.renewed:
                self.renewed = False
                fresh = list(dict.fromkeys(fresh))
            entries = [  # sort_key(t) + (t,), written out
                (-t.node.prod.salience, -t.recency, t.node.order, -t.count, t)  # type: ignore[attr-defined]
                for t in fresh
                if not t.dead and not t.fired
            ]
            if len(entries) > len(heap):
                heap.extend(entries)
                heapq.heapify(heap)
            else:
                push = heapq.heappush
                for e in entries:
                    push(heap, e)
        elif len(heap) > 64 + 4 * self.live:
            heap = self.heap = _pending(heap)
            heapq.heapify(heap)
        pop = heapq.heappop
        while heap:
            e = pop(heap)
            t = e[4]
            if not t.dead and not t.fired and e[3] == -t.count:
                return t
        return None

    def __len__(self) -> int:
        return self.live


class Match:
    """One match of a production: its facts and bindings; ``fire()`` runs the action."""

    __slots__ = ("_binds", "_count", "_net", "_token")

    def __init__(self, net: ReteNetwork, token: Token) -> None:
        self._net = net
        self._token = token
        # A modify may renew a match in place (same token, new values, new activation):
        # this handle stays the match it was made for.
        self._count = token.count
        self._binds = token.binds

    @property
    def production(self) -> Production:
        return self._token.node.prod  # type: ignore[attr-defined, no-any-return]

    @property
    def facts(self) -> tuple[Fact, ...]:
        """The facts matched by the positive patterns, in condition order."""
        b = self._binds
        slots: tuple[int, ...] = self._token.node.info.fact_slots  # type: ignore[attr-defined]
        if len(slots) == 1:  # the usual match of a stream's rule: one fact
            return (b[slots[0]].fact,)
        return tuple([b[i].fact for i in slots])

    @property
    def bindings(self) -> dict[str, Any]:
        b = self._binds
        slots: dict[str, int] = self._token.node.info.var_slots  # type: ignore[attr-defined]
        return {name: user_value(b[i]) for name, i in slots.items()}

    @property
    def fired(self) -> bool:
        return self._token.fired and self._count == self._token.count

    @property
    def valid(self) -> bool:
        """False once the match has gone (a fact it used was retracted or changed)."""
        t = self._token
        return not t.dead and self._count == t.count

    @property
    def recency(self) -> int:
        return self._token.recency

    def fire(self) -> Any:
        """Run the production's action for this match; returns its result."""
        if self._count != self._token.count:
            raise RuleError("this match no longer holds", production=self.production.name)
        return self._net._fire(self._token)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Match) and other._token is self._token and other._count == self._count
        )

    def __hash__(self) -> int:
        return hash((id(self._token), self._count))

    def __repr__(self) -> str:
        return f"Match({self.production.name!r}, {self.bindings!r})"


# Users subclass it (a compiled build's classes are otherwise closed to interpreted ones).
@mypyc_attr(allow_interpreted_subclasses=True)
class Listener:
    """Hooks on what the network does; override the ones you need (all no-ops here).

    Listeners run in the middle of matching: they must not change the network.
    """

    def on_assert(self, fact: Fact) -> None:
        """A fact was added (also for facts added by actions and nested facts)."""

    def on_retract(self, fact: Fact) -> None:
        """A fact was removed (by ``remove_fact`` or because its logical support went)."""

    def on_modify(self, fact: Fact) -> None:
        """A fact was changed through ``update_fact``."""

    def on_activation_added(self, match: Match) -> None:
        """A new match entered the agenda."""

    def on_activation_removed(self, match: Match) -> None:
        """A match left the agenda without firing (a fact it needed went away)."""

    def on_fire(self, match: Match, result: Any) -> None:
        """A match fired; ``result`` is what the action returned."""
