"""Facts stage, the rule context: what a production's action sees as ``ctx``.

The pipeline injects one ``RuleContext`` into the network (``net.inject("ctx", ...)``);
an action that names a ``ctx`` argument gets it. Through it an action emits decisions,
reads the time of the firing's cause, and changes facts with expiry and timers, all on
event time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from streamrules.facts.clock import EventClock
from streamrules.facts.memory import WorkingMemory
from streamrules.facts.types import fact_ref
from streamrules.rete import Fact

__all__ = ["Emission", "RuleContext"]


class Emission(NamedTuple):
    """A decision asked for by an action; the pipeline adds rule, time and id."""

    key: str
    payload: Mapping[str, Any]
    facts: tuple[tuple[str, str], ...] | None


class RuleContext:
    """The ``ctx`` argument of rule actions.

    ``now_ms``
        the event time of what caused this firing: the event's ``ts``, or the expiry or
        timer time when the clock caused it (epoch ms).
    ``watermark_ms``
        the processor's clock (>= ``now_ms`` for a late but admitted event).
    """

    __slots__ = ("_clock", "_memory", "now_ms", "pending")

    def __init__(self, memory: WorkingMemory, clock: EventClock) -> None:
        self._memory = memory
        self._clock = clock
        # Emissions not yet turned into decisions (read and cleared by the pipeline); plain
        # tuples with Emission's fields (one per decision: a NamedTuple costs more to make).
        self.pending: list[tuple[str, Mapping[str, Any], tuple[tuple[str, str], ...] | None]] = []
        self.now_ms = 0

    @property
    def watermark_ms(self) -> int | None:
        return self._clock.watermark_ms

    def emit(
        self,
        key: str,
        payload: Mapping[str, Any],
        *,
        facts: Iterable[Fact | tuple[str, str]] | None = None,
    ) -> None:
        """Publish a decision with this record ``key`` and ``payload``.

        Its ``facts`` default to the facts of the firing match; pass facts (or
        ``(type, id)`` pairs) to name others.
        """
        # Checked here, inside the action, so that a mistake is this rule's error
        # (a rule_error dead letter naming it), not a failure further down.
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(f"decision key must be a str, got {type(key).__name__}")
        if type(payload) is not dict and not isinstance(payload, Mapping):
            raise TypeError(f"decision payload must be a mapping, got {type(payload).__name__}")
        refs = None
        if facts is not None:
            refs = tuple([_ref(f) for f in facts])
        self.pending.append((key, payload, refs))

    def insert(
        self, fact: Fact, *, expires_at_ms: int | None = None, logical: bool = False
    ) -> Fact:
        """Assert ``fact``; it is retracted when the watermark reaches ``expires_at_ms``.

        ``logical=True`` ties it to the firing match as well (retracted when the match
        goes away, whichever comes first).
        """
        return self._memory.insert(fact, expires_at_ms=expires_at_ms, logical=logical)

    def retract(self, fact: Fact) -> None:
        """Retract a live fact."""
        self._memory.retract(fact)

    def modify(self, fact: Fact, **changes: Any) -> Fact:
        """Change attributes of a live fact; matches not depending on them stay put."""
        return self._memory.modify(fact, **changes)

    def expire_at(self, fact: Fact, at_ms: int) -> None:
        """Give a live fact a new expiry time."""
        self._memory.expire_at(fact, at_ms)

    def schedule(self, at_ms: int, fact: Fact) -> None:
        """A timer: assert ``fact`` when the watermark reaches ``at_ms``.

        The fact lives for that one agenda run (decisions then carry ``at_ms`` as their
        event time) and is retracted afterwards: schedule a fresh fact, not one that is
        live for other reasons.
        """
        self._memory.schedule(at_ms, fact)

    def take_emissions(self) -> list[Emission]:
        """The decisions asked for since the last call (the pipeline's side)."""
        pending, self.pending = self.pending, []
        return [Emission(*p) for p in pending]

    def take_pending(
        self,
    ) -> list[tuple[str, Mapping[str, Any], tuple[tuple[str, str], ...] | None]]:
        """``take_emissions`` as plain ``(key, payload, facts)`` tuples (the hot path)."""
        pending, self.pending = self.pending, []
        return pending


def _ref(f: Fact | tuple[str, str]) -> tuple[str, str]:
    if isinstance(f, tuple):
        # Checked here so that a malformed pair is this rule's error, not a crash later.
        if len(f) != 2:
            raise TypeError(f"a decision fact must be a Fact or a (type, id) pair, got {f!r}")
        return f
    return fact_ref(f)
