"""Pipeline: decode -> map -> expire -> match -> fire -> encode, pure and synchronous.

One input record (or an already decoded event) in, the decisions and dead letters it
causes out (contract sections 2 to 4). No I/O and no wall clock: the Kafka service, the
``replay`` command and the test driver all drive this same object.

Processing one event (contract section 2): move the watermark to max(watermark, ts);
retract every fact whose expiry is <= the watermark and fire every timer due at or before
it, in time order, running the rules after each; then apply the event; then run the
agenda until it is empty.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamrules.codec import Decision, Event, Record, decision_id, decode, topic_for_type
from streamrules.codec.timefmt import format_ms
from streamrules.errors import DecodeError, RuleError
from streamrules.facts import (
    DEFAULT_ALLOWED_LATENESS_MS,
    EventClock,
    EventMapper,
    RuleContext,
    WorkingMemory,
    fact_ref,
)
from streamrules.facts.expiry import EXPIRE
from streamrules.rete import Match, ReteNetwork
from streamrules.rules import DEFAULT_RULES, RuleSpec, as_specs, load_rules

__all__ = ["DEFAULT_RULES", "DeadLetter", "Decision", "Pipeline", "StepResult"]

log = logging.getLogger(__name__)

# A rule that raises on every firing it causes must not keep one step busy forever.
_MAX_RULE_ERRORS_PER_RUN = 10_000
# Occurrence counters whose event time is further behind the watermark than the allowed
# lateness plus this margin can no longer be hit (see _prune_occurrences); they are
# dropped each time the watermark has moved on by the margin, so that the map holds a few
# minutes of decisions, not hours of them.
_OCCURRENCE_HORIZON_MS = 5 * 60 * 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the processor could not use: the original record and why."""

    record: Record
    reason: str
    message: str


@dataclass(slots=True)
class StepResult:
    """What a step caused, in order."""

    decisions: list[Decision] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class Pipeline:
    """The rules processor without transport: feed it records or events, in order."""

    def __init__(
        self,
        rules: Sequence[RuleSpec] | str = DEFAULT_RULES,
        *,
        allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS,
    ) -> None:
        self.productions = load_rules(as_specs(rules))
        self.clock = EventClock(allowed_lateness_ms)
        self.net = ReteNetwork()
        self.memory = WorkingMemory(self.net)
        self.mapper = EventMapper(self.memory)
        self.ctx = RuleContext(self.memory, self.clock)
        self.net.inject("ctx", self.ctx)
        for production in self.productions:
            self.net.add_production(production)
        self.memory.on_fire = self._fired
        # base decision id -> (firings so far, event time, step): ids never repeat.
        self._occurrences: dict[str, tuple[int, int, int]] = {}
        self._out: StepResult | None = None
        self._event: Event | None = None  # the cause of the current step, if an event
        self._failed = False
        self._prune_after_ms: int | None = None  # event time of the next pruning
        self._steps = 0
        self._time_ms = -1
        self._time_text = ""
        self._counts: Counter[str] = Counter()
        self._decisions_by_rule: Counter[str] = Counter()
        self._dead_by_reason: Counter[str] = Counter()

    # -- the interface -----------------------------------------------------------------------

    @property
    def watermark_ms(self) -> int | None:
        return self.clock.watermark_ms

    def decode(self, record: Record) -> Event | DeadLetter:
        """The event in ``record``, or its dead letter; changes no state."""
        try:
            return decode(record)
        except DecodeError as exc:
            return DeadLetter(record, exc.reason, exc.message)

    def process(self, item: Record | Event) -> StepResult:
        """Process one record or event: the decisions and dead letters it causes."""
        out = StepResult()
        self._process_into(item, out)
        return out

    def process_many(self, items: Iterable[Record | Event]) -> StepResult:
        """Process items in order; the same as ``process`` one at a time, concatenated."""
        out = StepResult()
        for item in items:
            self._process_into(item, out)
        return out

    def advance_to(self, ts_ms: int) -> StepResult:
        """Move the watermark to ``ts_ms`` (never back) and fire what falls due."""
        out = StepResult()
        self._steps += 1
        self._out = out
        self._event = None
        try:
            watermark = self.clock.advance(ts_ms)
            self._drain_due(watermark, None)
        finally:
            self._out = None
        return out

    def stats(self) -> Mapping[str, Any]:
        """Counters for the replay summary and metrics (a snapshot)."""
        mapped = self.mapper.counts
        return {
            "records": self._counts["records"],
            "events": self._counts["events"],
            "late_events": self._dead_by_reason["late_event"],
            "duplicates": mapped["duplicates"],
            "unknown_incidents": mapped["unknown_incidents"],
            "repeated_acks": mapped["repeated_acks"],
            "rule_errors": self._counts["rule_errors"],
            "decisions": sum(self._decisions_by_rule.values()),
            "decisions_by_rule": dict(sorted(self._decisions_by_rule.items())),
            "dead_letters": sum(self._dead_by_reason.values()),
            "dead_letters_by_reason": dict(sorted(self._dead_by_reason.items())),
            "facts_live": len(self.net.facts),
            "orders_live": len(self.mapper.orders),
            "incidents_live": len(self.mapper.incidents),
            "pending_expiries_and_timers": len(self.memory.index),
            "watermark_ms": self.clock.watermark_ms,
            "watermark": None
            if self.clock.watermark_ms is None
            else format_ms(self.clock.watermark_ms),
        }

    # -- one step ----------------------------------------------------------------------------

    def _process_into(self, item: Record | Event, out: StepResult) -> None:
        self._counts["records"] += 1
        self._steps += 1
        if isinstance(item, Record):
            decoded = self.decode(item)
            if isinstance(decoded, DeadLetter):
                self._dead(out, decoded)
                return
            event = decoded
        else:
            event = item
        record = event.record
        clock = self.clock
        if clock.is_late(event.ts_ms):
            message = (
                f"ts {format_ms(event.ts_ms)} is older than the watermark "
                f"{format_ms(clock.watermark_ms or 0)} minus the allowed lateness "
                f"({clock.allowed_lateness_ms} ms)"
            )
            self._dead(out, DeadLetter(record or _record_of(event), "late_event", message))
            return
        self._counts["events"] += 1
        self._out = out
        self._event = event
        self._failed = False
        try:
            watermark = clock.advance(event.ts_ms)
            self._drain_due(watermark, event)
            self.ctx.now_ms = event.ts_ms
            self.mapper.apply(event.type, event.data, event.ts, event.ts_ms)
            self._run(event)
            if self.memory.has_ephemeral():
                self.memory.end_ephemeral()
                self._run(event)
            # Only rules can set an expiry or timer already behind the watermark (with a
            # large allowed lateness): honour it now rather than at the next event.
            self._drain_due(watermark, event)
        finally:
            self._out = None

    def _drain_due(self, watermark: int, event: Event | None) -> None:
        if not self.memory.index.due(watermark):
            return
        memory, ctx = self.memory, self.ctx
        while (due := memory.pop_due(watermark)) is not None:
            ctx.now_ms = due.at_ms
            if due.kind == EXPIRE:
                memory.retract(due.fact)
            else:
                memory.insert_ephemeral(due.fact)
            self._run(event)
            if memory.has_ephemeral():
                memory.end_ephemeral()
                self._run(event)

    def _run(self, event: Event | None) -> None:
        errors = 0
        while True:
            try:
                self.net.run()
                return
            except RuleError as exc:
                self.ctx.take_emissions()  # a failed action publishes nothing
                errors += 1
                self._rule_error(exc, event)
                if errors >= _MAX_RULE_ERRORS_PER_RUN:
                    log.error("giving up this agenda run after %d rule errors", errors)
                    return

    def _rule_error(self, exc: RuleError, event: Event | None) -> None:
        self._counts["rule_errors"] += 1
        cause = exc.__cause__
        message = f"{exc}: {type(cause).__name__}: {cause}" if cause is not None else str(exc)
        if event is None:
            log.error("rule error on a clock advance: %s", message)
            return
        log.warning("rule error: %s", message)
        if self._failed or self._out is None:
            return  # one dead letter per record, however many rules failed
        self._failed = True
        record = event.record or _record_of(event)
        self._dead(self._out, DeadLetter(record, "rule_error", message))

    def _dead(self, out: StepResult, dead: DeadLetter) -> None:
        self._dead_by_reason[dead.reason] += 1
        out.dead_letters.append(dead)

    # -- firings become decisions -------------------------------------------------------------

    def _fired(self, match: Match) -> None:
        ctx = self.ctx
        if not ctx.pending:
            return
        emissions = ctx.take_emissions()
        out = self._out
        rule = match.production.name
        at_ms = ctx.now_ms
        if at_ms != self._time_ms:  # one event's decisions share one formatted time
            self._time_ms, self._time_text = at_ms, format_ms(at_ms)
        by_rule = self._decisions_by_rule
        for em in emissions:
            facts = em.facts
            if facts is None:
                facts = tuple([fact_ref(f) for f in match.facts])
            try:
                did = self._decision_id(rule, em.key, at_ms, facts, em.payload)
            except RuleError as exc:  # a payload that is not JSON
                self._rule_error(exc, self._event)
                continue
            decision = Decision(
                did,
                rule,
                em.key,
                self._time_text,
                em.payload,
                tuple([{"type": t, "id": i} for t, i in facts]),
            )
            by_rule[rule] = by_rule.get(rule, 0) + 1
            if out is not None:
                out.decisions.append(decision)

    def _decision_id(
        self,
        rule: str,
        key: str,
        at_ms: int,
        facts: tuple[tuple[str, str], ...],
        payload: Mapping[str, Any],
    ) -> str:
        base = decision_id(rule, key, at_ms, facts, payload)
        seen = self._occurrences.get(base)
        if seen is None:
            self._occurrences[base] = (1, at_ms, self._steps)
            if self._prune_after_ms is None:
                self._prune_after_ms = at_ms + _OCCURRENCE_HORIZON_MS
            elif at_ms >= self._prune_after_ms:
                self._prune_occurrences()
            return base
        self._occurrences[base] = (seen[0] + 1, at_ms, self._steps)
        return decision_id(rule, key, at_ms, facts, payload, occurrence=seen[0])

    def _prune_occurrences(self) -> None:
        # A firing's event time is an admitted event's ts (>= watermark - lateness) or a
        # due time on the clock, and clock firings of one time all happen in one step:
        # counters behind watermark - lateness, from earlier steps, are dead weight.
        watermark = self.clock.watermark_ms or 0
        horizon = watermark - self.clock.allowed_lateness_ms - _OCCURRENCE_HORIZON_MS
        step = self._steps
        self._occurrences = {
            k: v for k, v in self._occurrences.items() if v[1] >= horizon or v[2] == step
        }
        self._prune_after_ms = watermark + _OCCURRENCE_HORIZON_MS


def _record_of(event: Event) -> Record:
    """A stand-in record for an event fed without one (tests, the driver)."""
    try:
        topic = topic_for_type(event.type)
    except KeyError:
        topic = ""
    return Record(
        topic=topic,
        partition=-1,
        offset=-1,
        key=None,
        value=orjson.dumps(dict(event.data)),
    )
