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

from streamrules.rete.fact import Fact, user_value

if TYPE_CHECKING:
    from streamrules.rete.beta import PNode
    from streamrules.rete.network import ReteNetwork
    from streamrules.rete.production import Production
    from streamrules.rete.tokens import Token


def sort_key(t: Token) -> tuple[int, int, int, int]:
    node: PNode = t.node  # type: ignore[assignment]
    return (-node.prod.salience, -t.recency, node.order, -t.count)


class Agenda:
    """Pending activations (production-node tokens not yet fired).

    New activations wait in ``fresh`` and enter the heap only when the next one is
    wanted: most activations of a busy change are deleted again before that (a modify
    withdraws and re-makes matches), and then never cost a heap push.
    """

    __slots__ = ("fresh", "heap", "live", "seq")

    def __init__(self) -> None:
        self.heap: list[tuple[int, int, int, int, Token]] = []
        self.fresh: list[Token] = []
        self.live = 0
        self.seq = 0

    def push(self, t: Token) -> None:
        self.seq += 1
        t.count = self.seq
        self.fresh.append(t)
        self.live += 1

    def gone(self) -> None:
        """An activation left the agenda (fired or deleted): maybe compact."""
        self.live -= 1
        if len(self.fresh) + len(self.heap) > 64 + 4 * self.live:
            self.compact()

    def compact(self) -> None:
        self.fresh = [t for t in self.fresh if not t.dead and not t.fired]
        self.heap = [e for e in self.heap if not e[4].dead and not e[4].fired]
        heapq.heapify(self.heap)

    def pop(self) -> Token | None:
        heap = self.heap
        if self.fresh:
            push = heapq.heappush
            for t in self.fresh:
                if not t.dead and not t.fired:
                    push(heap, (*sort_key(t), t))
            self.fresh = []
        while heap:
            t = heapq.heappop(heap)[4]
            if not t.dead and not t.fired:
                return t
        return None

    def __len__(self) -> int:
        return self.live


class Match:
    """One match of a production: its facts and bindings; ``fire()`` runs the action."""

    __slots__ = ("_net", "_token")

    def __init__(self, net: ReteNetwork, token: Token) -> None:
        self._net = net
        self._token = token

    @property
    def production(self) -> Production:
        return self._token.node.prod  # type: ignore[attr-defined, no-any-return]

    @property
    def facts(self) -> tuple[Fact, ...]:
        """The facts matched by the positive patterns, in condition order."""
        b = self._token.binds
        return tuple(b[i].fact for i in self._token.node.info.fact_slots)  # type: ignore[attr-defined]

    @property
    def bindings(self) -> dict[str, Any]:
        b = self._token.binds
        slots: dict[str, int] = self._token.node.info.var_slots  # type: ignore[attr-defined]
        return {name: user_value(b[i]) for name, i in slots.items()}

    @property
    def fired(self) -> bool:
        return self._token.fired

    @property
    def valid(self) -> bool:
        """False once the match has gone (a fact it used was retracted or changed)."""
        return not self._token.dead

    @property
    def recency(self) -> int:
        return self._token.recency

    def fire(self) -> Any:
        """Run the production's action for this match; returns its result."""
        return self._net._fire(self._token)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Match) and other._token is self._token

    def __hash__(self) -> int:
        return id(self._token)

    def __repr__(self) -> str:
        return f"Match({self.production.name!r}, {self.bindings!r})"


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
