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

import gc
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from streamrules.codec import Decision, Event, Record, topic_for_type
from streamrules.codec.decode import Decoder
from streamrules.codec.encode import decision_id_of
from streamrules.codec.events import positional_maker
from streamrules.codec.timefmt import MAX_EVENT_TIME_MS, format_ms
from streamrules.errors import ConfigError, DecodeError, RuleError
from streamrules.facts import (
    DEFAULT_ALLOWED_LATENESS_MS,
    EventClock,
    EventMapper,
    RuleContext,
    WorkingMemory,
)
from streamrules.facts.expiry import EXPIRE
from streamrules.facts.types import fact_refs_and_objects
from streamrules.rete import Listener, Match, ReteNetwork
from streamrules.rules import DEFAULT_RULES, RuleSpec, as_specs, load_rules

__all__ = [
    "DEFAULT_MAX_FIRINGS_PER_EVENT",
    "DEFAULT_RULES",
    "DeadLetter",
    "Decision",
    "Pipeline",
    "StepResult",
    "freeze_startup_objects",
    "thaw_startup_objects",
]

log = logging.getLogger(__name__)


# A rule that raises on every firing it causes must not keep one step busy forever.
_MAX_RULE_ERRORS_PER_RUN = 10_000
# Firings one event (or one clock advance) may cause before its agenda is given up as a
# runaway (rules re-activating themselves forever): the record is a rule_error.
DEFAULT_MAX_FIRINGS_PER_EVENT = 100_000
# Occurrence counters whose event time is further behind the watermark than the allowed
# lateness plus this margin can no longer be hit (see _prune_occurrences); they are
# dropped each time the watermark has moved on by the margin, so that the map holds a few
# minutes of decisions, not hours of them.
_OCCURRENCE_HORIZON_MS = 5 * 60 * 1000


class _FiringLimit(RuleError):
    """One step fired more than ``max_firings_per_event`` times."""


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
    # Those of ``decisions`` caused by the clock (an expiry or a timer falling due), not
    # by the event itself: the service tells who already published them by event time.
    timed: list[Decision] = field(default_factory=list)


# Whether this module runs compiled by mypyc (the optional build; see streamrules.build):
# its dataclasses are then compiled classes, whose constructor is a C call (and which have
# no slots for ``positional_maker``).
_COMPILED: Final = not __file__.endswith((".py", ".pyc"))
_make_step = StepResult if _COMPILED else positional_maker(StepResult)  # one per process()
_make_decision = positional_maker(Decision)  # one per decision: the hot path


class _Decisions(Listener):
    """The network's ``on_fire`` listener: each firing that emitted becomes decisions.

    Ids never repeat: the first firing with a given (rule, key, time, facts, payload) gets
    ``decision_id(...)``, the n-th one ``decision_id(..., occurrence=n - 1)``.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._ctx = pipeline.ctx
        self._clock = pipeline.clock
        self.out: list[Decision] | None = None  # the current step's decisions
        self.step = 0  # the current step's number
        self.step_firings = 0  # firings in the current step
        # Firings of a time before this bound are late (see on_fire): the watermark as the
        # step found it, minus the allowed lateness (None: no event yet).
        self.late_before_ms: int | None = None
        self.timed: list[Decision] | None = None  # while the clock fires: the step's timed
        self.max_step_firings = pipeline.max_firings_per_event
        self.by_rule: dict[str, int] = {}
        self.fired: dict[str, int] = {}  # every firing, emitting or not (for the metrics)
        # base decision id -> (firings so far, event time, step).
        self.occurrences: dict[str, tuple[int, int, int]] = {}
        self._prune_after_ms: int | None = None  # event time of the next pruning
        self._time_ms = -1
        self._time_text = ""

    def on_fire(self, match: Match, result: Any) -> None:
        # Once per firing, and for most firings once per decision: Python steps count
        # here (the replay's decision path). Hence the inlined calls below.
        self.step_firings += 1
        if self.step_firings > self.max_step_firings:
            raise _FiringLimit(
                f"more than max_firings_per_event ({self.max_step_firings}) firings for one "
                "event: rules that keep re-activating themselves? The rest of its agenda was "
                "dropped",
                production=match.production.name,
            )
        ctx = self._ctx
        rule = match.production.name
        fired = self.fired
        fired[rule] = fired.get(rule, 0) + 1
        emissions = ctx.pending
        if not emissions:
            return
        ctx.pending = []  # ctx.take_pending(), inline
        at_ms = ctx.now_ms
        if at_ms != self._time_ms:  # one event's decisions share one formatted time
            self._time_ms, self._time_text = at_ms, format_ms(at_ms)
        # A firing of a time already behind watermark - lateness *as the step found it*
        # (only the clock's: a timer or expiry a rule set in the past) is told apart by
        # the watermark, and its counter kept by it: counters are dropped once their time
        # is that far behind (see _prune), yet the same past time may fire again later.
        # A timer that falls due as the watermark moves on is not late, however far the
        # step moves it: its id does not depend on how many events an instance saw in
        # between (several instances, each with its own orders, give the ids replay gives).
        late: int | None = None
        kept_ms = at_ms
        late_before = self.late_before_ms
        if late_before is not None and at_ms < late_before:
            late = kept_ms = self._clock.watermark_ms or at_ms  # set: an event came first
        out = self.out
        by_rule = self.by_rule
        default = None  # the match's facts, made once for all its emissions
        refs: Sequence[tuple[str, str]]
        objects: tuple[Mapping[str, str], ...]
        for key, payload, named in emissions:
            if named is None:  # the common case: the facts of the match
                if default is None:
                    try:
                        default = fact_refs_and_objects(match.facts)
                    except RuleError as exc:  # a fact with no deterministic id
                        self._pipeline._rule_error(
                            RuleError(str(exc), production=rule), self._pipeline._event
                        )
                        return
                refs, objects = default
            else:  # facts named by the action
                refs = named
                objects = tuple([{"type": t, "id": i} for t, i in named])
            try:
                did = decision_id_of(rule, key, at_ms, refs, payload, 0, late)
            except RuleError as exc:  # a payload that is not JSON
                self._pipeline._rule_error(exc, self._pipeline._event)
                continue
            # The first firing with this base id keeps it; the n-th gets occurrence n - 1.
            # setdefault: one dict operation for a first firing (nearly all of them); a
            # first firing is told by the dict growing (not by ``seen is`` the tuple given:
            # compiled, a tuple of ints is a value, boxed anew wherever it is an object).
            occurrences = self.occurrences
            known = len(occurrences)
            seen = occurrences.setdefault(did, (1, kept_ms, self.step))
            if len(occurrences) != known:
                prune_after = self._prune_after_ms
                if prune_after is None:
                    self._prune_after_ms = kept_ms + _OCCURRENCE_HORIZON_MS
                elif kept_ms >= prune_after:
                    self._prune()
            else:
                occurrences[did] = (seen[0] + 1, kept_ms, self.step)
                did = decision_id_of(rule, key, at_ms, refs, payload, seen[0], late)
            by_rule[rule] = by_rule.get(rule, 0) + 1
            if out is not None:
                decision = _make_decision(did, rule, key, self._time_text, payload, objects)
                out.append(decision)
                if self.timed is not None:
                    self.timed.append(decision)

    def _prune(self) -> None:
        # A counter's time is its firing's event time, at least watermark - lateness as
        # its step found the watermark (an admitted event's ts, or a due time on the
        # clock), or for a late clock firing the watermark then. No later firing can have
        # the same base id once that time is behind watermark - lateness: a later step
        # finds the watermark at least where it is now, so an on-time firing's time is
        # not that far behind, and a late one's id holds a watermark, which never moves
        # back. Hence counters
        # behind watermark - lateness (with a margin), from earlier steps, are dead weight.
        watermark = self._clock.watermark_ms or 0
        horizon = watermark - self._clock.allowed_lateness_ms - _OCCURRENCE_HORIZON_MS
        # Counters come in about time order (first firings): those from the front up to
        # the first one still needed go. One behind it that could go stays until a later
        # pruning gets to it: the map stays bounded, and a pruning costs what it drops.
        step = self.step
        occurrences = self.occurrences
        gone = []
        for k, (_, at_ms, at_step) in occurrences.items():
            if at_ms >= horizon or at_step == step:
                break
            gone.append(k)
        for k in gone:
            del occurrences[k]
        self._prune_after_ms = watermark + _OCCURRENCE_HORIZON_MS


class Pipeline:
    """The rules processor without transport: feed it records or events, in order."""

    def __init__(
        self,
        rules: Sequence[RuleSpec] | str = DEFAULT_RULES,
        *,
        allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS,
        decoder: Decoder | None = None,
        max_firings_per_event: int = DEFAULT_MAX_FIRINGS_PER_EVENT,
    ) -> None:
        """``decoder`` decodes the records given to ``process`` (default: the schemas' own
        topic names, no size limit, no future check). An event (or a clock advance) whose
        agenda fires more than ``max_firings_per_event`` times is a ``rule_error``; the
        rest of its agenda is dropped."""
        if max_firings_per_event < 1:
            raise ConfigError(f"max_firings_per_event must be >= 1, got {max_firings_per_event}")
        self.max_firings_per_event = max_firings_per_event
        self.productions = load_rules(as_specs(rules))
        self.clock = EventClock(allowed_lateness_ms)
        self.net = ReteNetwork()
        self.memory = WorkingMemory(self.net)
        self.mapper = EventMapper(self.memory)
        self.ctx = RuleContext(self.memory, self.clock)
        self.net.inject("ctx", self.ctx)
        for production in self.productions:
            self.net.add_production(production)
        self._decisions = _Decisions(self)
        self.net.add_listener(self._decisions)
        self.decoder = self._decoder = decoder or Decoder()
        self._out: StepResult | None = None
        self._event: Event | None = None  # the cause of the current step, if an event
        self._failed = False
        self._steps = 0
        self._records = 0
        self._events = 0
        self._rule_errors = 0
        self._rule_errors_by_rule: dict[str, int] = {}
        self._dead_by_reason: Counter[str] = Counter()

    # -- the interface -----------------------------------------------------------------------

    @property
    def watermark_ms(self) -> int | None:
        return self.clock.watermark_ms

    def decode(self, record: Record) -> Event | DeadLetter:
        """The event in ``record``, or its dead letter; changes no state."""
        try:
            return self._decoder.decode(record)
        except DecodeError as exc:
            return DeadLetter(record, exc.reason, exc.message)

    def process(self, item: Record | Event) -> StepResult:
        """Process one record or event: the decisions and dead letters it causes."""
        out = _make_step([], [], [])
        self._process_into(item, out)
        return out

    def process_many(self, items: Iterable[Record | Event]) -> StepResult:
        """Process items in order; the same as ``process`` one at a time, concatenated."""
        out = StepResult()
        for item in items:
            self._process_into(item, out)
        return out

    def advance_to(self, ts_ms: int) -> StepResult:
        """Move the watermark to ``ts_ms`` (never back) and fire what falls due.

        ``ValueError`` beyond 9999-12-31T23:59:59.999Z, the last time an event can have:
        what would fall due then could not be written as an RFC 3339 time.
        """
        if ts_ms > MAX_EVENT_TIME_MS:
            raise ValueError(
                f"cannot advance event time to {ts_ms} ms: beyond {format_ms(MAX_EVENT_TIME_MS)}"
                ", the last RFC 3339 time"
            )
        out = StepResult()
        self._steps += 1
        self._begin_step(out, None)
        try:
            watermark = self.clock.advance(ts_ms)
            self._drain_due(watermark, None)
        finally:
            self._end_step()
        return out

    @property
    def firings_by_rule(self) -> Mapping[str, int]:
        """Firings so far per rule (a live view: copy it to keep it)."""
        return self._decisions.fired

    @property
    def rule_errors_by_rule(self) -> Mapping[str, int]:
        """Rule errors so far per rule (a live view)."""
        return self._rule_errors_by_rule

    def facts_live_by_type(self) -> dict[str, int]:
        """Live facts: orders, incidents, and those the rules made (``derived``)."""
        orders, incidents = len(self.mapper.orders), len(self.mapper.incidents)
        derived = max(0, self.net.fact_count - orders - incidents)
        return {"order": orders, "incident": incidents, "derived": derived}

    def stats(self) -> Mapping[str, Any]:
        """Counters for the replay summary and metrics (a snapshot)."""
        mapped = self.mapper.counts
        by_rule = self._decisions.by_rule
        return {
            "records": self._records,
            "events": self._events,
            "late_events": self._dead_by_reason["late_event"],
            "duplicates": mapped["duplicates"],
            "unknown_incidents": mapped["unknown_incidents"],
            "repeated_acks": mapped["repeated_acks"],
            "rule_errors": self._rule_errors,
            "decisions": sum(by_rule.values()),
            "decisions_by_rule": dict(sorted(by_rule.items())),
            "dead_letters": sum(self._dead_by_reason.values()),
            "dead_letters_by_reason": dict(sorted(self._dead_by_reason.items())),
            "facts_live": self.net.fact_count,
            "orders_live": len(self.mapper.orders),
            "incidents_live": len(self.mapper.incidents),
            "pending_expiries_and_timers": len(self.memory.index),
            "watermark_ms": self.clock.watermark_ms,
            "watermark": None
            if self.clock.watermark_ms is None
            else format_ms(self.clock.watermark_ms),
        }

    # -- one step ----------------------------------------------------------------------------

    def _begin_step(self, out: StepResult, event: Event | None) -> None:
        self._out = out
        self._event = event
        self._failed = False
        decisions = self._decisions
        decisions.out = out.decisions
        decisions.step = self._steps
        decisions.step_firings = 0
        watermark = self.clock.watermark_ms
        decisions.late_before_ms = (
            None if watermark is None else watermark - self.clock.allowed_lateness_ms
        )

    def _end_step(self) -> None:
        self._out = None
        self._decisions.out = None

    def _process_into(self, item: Record | Event, out: StepResult) -> None:
        self._records += 1
        self._steps += 1
        if type(item) is Event:  # replay and the service decode first: the common case
            event = item
        elif type(item) is Record:
            try:
                event = self._decoder.decode(item)
            except DecodeError as exc:
                self._dead(out, DeadLetter(item, exc.reason, exc.message))
                return
        elif isinstance(item, Event):
            event = item
        else:  # a Record subclass
            decoded = self.decode(item)
            if isinstance(decoded, DeadLetter):
                self._dead(out, decoded)
                return
            event = decoded
        ts_ms = event.ts_ms
        clock = self.clock
        watermark = clock.watermark_ms
        if watermark is not None and ts_ms < watermark - clock.allowed_lateness_ms:
            message = (
                f"ts {format_ms(ts_ms)} is older than the watermark "
                f"{format_ms(watermark)} minus the allowed lateness "
                f"({clock.allowed_lateness_ms} ms)"
            )
            self._dead(out, DeadLetter(event.record or _record_of(event), "late_event", message))
            return
        self._events += 1
        # _begin_step, inline (once per event).
        self._out = out
        self._event = event
        self._failed = False
        decisions = self._decisions
        decisions.out = out.decisions
        decisions.step = self._steps
        decisions.step_firings = 0
        decisions.late_before_ms = (
            None if watermark is None else watermark - clock.allowed_lateness_ms
        )
        # The network pauses the cyclic collector for each change and each agenda run (its
        # tokens are freed by reference counting); paused here once for the whole step,
        # those pauses cost nothing, and the collector runs between events instead.
        collecting = gc.isenabled()
        if collecting:
            gc.disable()
        try:
            if watermark is None or ts_ms > watermark:
                clock.watermark_ms = watermark = ts_ms
            memory = self.memory
            due = memory.index.due
            if due(watermark):
                self._drain_due(watermark, event)
            self.ctx.now_ms = ts_ms
            self.mapper.apply(event.type, event.data, event.ts, ts_ms)
            try:
                self.net.run()
            except RuleError as exc:
                self._run_after_error(exc, event)
            if memory.has_ephemeral():
                memory.end_ephemeral()
                self._run(event)
            # Only rules can set an expiry or timer already behind the watermark (with a
            # large allowed lateness): honour it now rather than at the next event.
            if due(watermark):
                self._drain_due(watermark, event)
        finally:
            self._out = None  # _end_step, inline
            decisions.out = None
            if collecting:
                gc.enable()

    def _drain_due(self, watermark: int, event: Event | None) -> None:
        # Once per expired order on a steady stream: the network is called directly (the
        # memory's retract is that call, its tracker hears the retraction either way).
        memory, ctx, net = self.memory, self.ctx, self.net
        pop = memory.index.pop_entry
        remove_fact, run = net.remove_fact, net.run
        decisions = self._decisions
        out = self._out
        decisions.timed = None if out is None else out.timed  # what fires now is timed
        try:
            while (due := pop(watermark)) is not None:
                at_ms, kind, fact = due
                ctx.now_ms = at_ms
                if kind == EXPIRE:
                    remove_fact(fact)
                else:
                    memory.insert_ephemeral(fact)
                try:
                    run()
                except RuleError as exc:
                    self._run_after_error(exc, event)
                if memory.has_ephemeral():
                    memory.end_ephemeral()
                    self._run(event)
        finally:
            decisions.timed = None

    def _run(self, event: Event | None) -> None:
        try:
            self.net.run()
        except RuleError as exc:
            self._run_after_error(exc, event)

    def _run_after_error(self, exc: RuleError, event: Event | None) -> None:
        errors = 0
        while True:
            self.ctx.take_pending()  # a failed action publishes nothing
            errors += 1
            self._rule_error(exc, event)
            if isinstance(exc, _FiringLimit):
                self.net.drop_activations()
                return
            if errors >= _MAX_RULE_ERRORS_PER_RUN:
                log.error("giving up this agenda run after %d rule errors", errors)
                return
            try:
                self.net.run()
                return
            except RuleError as again:
                exc = again

    def _rule_error(self, exc: RuleError, event: Event | None) -> None:
        self._rule_errors += 1
        name = exc.production or "(unknown)"
        self._rule_errors_by_rule[name] = self._rule_errors_by_rule.get(name, 0) + 1
        cause = exc.__cause__
        message = str(exc)
        if cause is not None and str(cause) not in message:  # said once
            message = f"{message}: {type(cause).__name__}: {cause}"
        if event is None:
            log.error("rule error on a clock advance: %s", message)
            return
        if self._failed or self._out is None:
            # One dead letter per record, however many rules failed: the others are
            # told here only.
            log.warning("another rule error on the same record: %s", message)
            return
        # Its dead letter says it (replay prints it, the service publishes it): logged
        # below warning so that it is said once.
        log.info("rule error: %s", message)
        self._failed = True
        record = event.record or _record_of(event)
        self._dead(self._out, DeadLetter(record, "rule_error", message))

    def _dead(self, out: StepResult, dead: DeadLetter) -> None:
        self._dead_by_reason[dead.reason] += 1
        out.dead_letters.append(dead)


# The cyclic collector's thresholds while a long-running command runs (set by
# freeze_startup_objects, given back by thaw_startup_objects). Retracted facts are freed
# by reference counting, so a larger young generation piles up no garbage; it means fewer
# collections, and fewer short-lived objects (tokens, events, decisions) promoted to the
# old generation, whose growth is what triggers the expensive full collections.
RUN_GC_THRESHOLDS = (10_000, 20, 10)
_saved_gc_thresholds: list[tuple[int, int, int]] = []


# glibc's malloc raises its mmap threshold to the largest block freed so far. From then
# on, working memory's big hash tables (a few MB each at 36,000 live orders, reallocated
# each time insert/delete churn fills them) come from the heap instead and fragment it:
# the 1,000,000-record soak's RSS crept from 104 to 111 MiB over 26 simulated hours. With
# the threshold fixed, blocks this large are always mapped and given back when freed
# (the same soak: 103-104 MiB from hour 2 to the end).
MALLOC_MMAP_THRESHOLD = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's <malloc.h>


def fix_malloc_mmap_threshold() -> bool:
    """Fix glibc malloc's mmap threshold at ``MALLOC_MMAP_THRESHOLD`` for this process
    (a process-wide setting; it stays). False where there is no glibc ``mallopt``, and
    when the operator chose a threshold (glibc's ``MALLOC_MMAP_THRESHOLD_``)."""
    import ctypes

    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False

    try:
        libc = ctypes.CDLL(None)
    except (OSError, TypeError):
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # musl's mallopt does nothing
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD))


def freeze_startup_objects() -> None:
    """For a long-running command, once its pipeline is built (and again after each
    rebuild): move everything alive now (modules, rules, the network) out of the cyclic
    collector's reach, and set the collector's thresholds to ``RUN_GC_THRESHOLDS``; fix
    malloc's mmap threshold (``fix_malloc_mmap_threshold``).

    Those objects live as long as the process, yet every full collection would walk them
    again. ``thaw_startup_objects`` undoes the collector settings (for in-process callers
    and on exit).
    """
    fix_malloc_mmap_threshold()
    gc.collect()
    gc.freeze()
    if not _saved_gc_thresholds:
        _saved_gc_thresholds.append(gc.get_threshold())
    gc.set_threshold(*RUN_GC_THRESHOLDS)


def thaw_startup_objects() -> None:
    """Undo ``freeze_startup_objects``: unfreeze, and restore the thresholds it found."""
    gc.unfreeze()
    if _saved_gc_thresholds:
        gc.set_threshold(*_saved_gc_thresholds.pop())


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
