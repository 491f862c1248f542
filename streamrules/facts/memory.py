"""Facts stage, working memory: the network's facts with their expiries, timers and the
short-lived event facts.

Every fact change of the processor goes through here, so that the expiry index always
agrees with the network: a fact retracted by any route (its expiry, a rule, a logical
retraction, a resolution) has its pending expiry cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from streamrules.facts.expiry import Due, ExpiryIndex
from streamrules.rete import Fact, Listener, ReteNetwork

__all__ = ["WorkingMemory"]

log = logging.getLogger(__name__)

# Whether this module runs compiled by mypyc (the optional build; see streamrules.build).
_COMPILED: Final = not __file__.endswith((".py", ".pyc"))


class _Tracker(Listener):
    """Hears every retraction in the network and keeps the memory's indexes in step."""

    def __init__(self, memory: WorkingMemory) -> None:
        self._memory = memory
        # Called for every retraction (one an event, on the replay soak): the memory's
        # method itself, not a method that calls it. (Compiled, the method below is a C
        # call, and a compiled object's methods cannot be replaced.)
        if not _COMPILED:
            self.on_retract = memory._forget  # type: ignore[method-assign]

    def on_retract(self, fact: Fact) -> None:
        self._memory._forget(fact)


class WorkingMemory:
    """The network plus what the clock needs: expiries, timers, event facts."""

    def __init__(self, net: ReteNetwork) -> None:
        self.net = net
        self.index = ExpiryIndex()
        # id -> fact: event and timer facts still in the network.
        self._transient: dict[int, Fact] = {}
        # Called with every retracted fact (after the expiry bookkeeping).
        self.on_forget: list[Callable[[Fact], None]] = []
        net.add_listener(_Tracker(self))

    # -- changes ---------------------------------------------------------------------------

    def insert(
        self, fact: Fact, *, expires_at_ms: int | None = None, logical: bool = False
    ) -> Fact:
        """Assert ``fact``; retract it when the watermark reaches ``expires_at_ms``."""
        net = self.net
        stored: Fact = net.add_fact(fact, logical=True) if logical else net.add_fact(fact)
        if expires_at_ms is not None:
            self.index.expire_at(stored, expires_at_ms)
        return stored

    def insert_event(self, fact: Fact) -> Fact:
        """Assert an event fact: it is retracted by ``end_ephemeral``."""
        stored: Fact = self.net.add_fact(fact)
        self._transient[id(stored)] = stored
        return stored

    def retract(self, fact: Fact) -> None:
        """Retract ``fact`` (its pending expiry goes with it)."""
        self.net.remove_fact(fact)

    def modify(self, fact: Fact, **changes: Any) -> Fact:
        """Change attributes of a live fact (a modify: unaffected matches stay put)."""
        fact.update(changes)
        self.net.update_fact(fact)
        return fact

    def expire_at(self, fact: Fact, at_ms: int) -> None:
        """Give a live fact a new expiry."""
        self.index.expire_at(fact, at_ms)

    def schedule(self, at_ms: int, fact: Fact) -> None:
        """Timer: assert ``fact`` when the watermark reaches ``at_ms``, for one agenda run."""
        self.index.schedule(at_ms, fact)

    # -- the clock's side --------------------------------------------------------------------

    def pop_due(self, watermark_ms: int) -> Due | None:
        """The next expiry or timer due at or before the watermark (removed), if any."""
        return self.index.pop_due(watermark_ms)

    def insert_ephemeral(self, fact: Fact) -> Fact:
        """Assert a timer's fact: it is retracted by ``end_ephemeral``."""
        return self.insert_event(fact)

    def has_ephemeral(self) -> bool:
        """Whether event or timer facts wait to be retracted."""
        return bool(self._transient)

    def end_ephemeral(self) -> None:
        """Retract the event and timer facts asserted since the last call."""
        transient, self._transient = self._transient, {}
        for fact in transient.values():
            self.net.remove_fact(fact)

    def _forget(self, fact: Fact) -> None:
        self.index.cancel(fact)
        if self._transient:
            self._transient.pop(id(fact), None)
        for hook in self.on_forget:
            hook(fact)
