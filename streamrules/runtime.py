"""Shared by the runtimes (``app.py`` on aiokafka, ``streamrules.faust`` on Faust): the
pipeline and decoder a runtime builds from ``Settings``, where a rebuild re-reads from
(``rebuild_plan``), one merged record processed and what of its output this instance
publishes (``process_one``, ``publishable``: ownership and frontiers), and the output
records of one processed event (decisions to ``decisions``, dead letters to
``decisions.dlq``).

One place for these, so that both runtimes publish the same records (topics, keys,
values, headers, record timestamps), split the work between instances the same way, and
count it the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from streamrules.codec import Decision, Decoder, Event, dead_letter_headers, parse_rfc3339
from streamrules.codec.decode import wall_clock_ms
from streamrules.codec.events import positional_maker
from streamrules.codec.timefmt import parse_event_time
from streamrules.config import Settings
from streamrules.facts.types import is_global_type
from streamrules.frontier import Frontier
from streamrules.metrics import Metrics
from streamrules.pipeline import DeadLetter, Pipeline, StepResult
from streamrules.transport.base import OutRecord, TopicPartition

if TYPE_CHECKING:
    from streamrules.app import AppStats

__all__ = [
    "BatchOutput",
    "OffsetLookups",
    "RebuildPlan",
    "decision_time_ms",
    "emit",
    "lower_to_horizons",
    "new_decoder",
    "new_pipeline",
    "process_one",
    "publishable",
    "rebuild_plan",
]

_make_out = positional_maker(OutRecord)  # one per decision: the hot path


def new_pipeline(settings: Settings) -> Pipeline:
    """A fresh pipeline for these settings (fails early on bad rules: ConfigError)."""
    return Pipeline(
        settings.rules,
        allowed_lateness_ms=settings.allowed_lateness_ms,
        max_firings_per_event=settings.max_firings_per_event,
    )


def new_decoder(settings: Settings, wall_clock: Callable[[], int] = wall_clock_ms) -> Decoder:
    """The service's decoder. With the configured topic names it also catches events sent
    to the other input topic (a `schema` dead letter) under any topic names; records above
    max_record_bytes and events too far ahead of the wall clock are dead letters."""
    return Decoder(
        settings.topic_names,
        max_record_bytes=settings.max_record_bytes,
        max_future_ms=settings.service_max_future_ms,
        wall_clock_ms=wall_clock,
    )


OffsetsForTime = Callable[
    [Collection[TopicPartition], int], Awaitable[dict[TopicPartition, int | None]]
]


async def lower_to_horizons(
    offsets_for_time: OffsetsForTime,
    settings: Settings,
    start: MutableMapping[TopicPartition, int],
    begin: dict[TopicPartition, int],
    newest_ms: int,
    *,
    raise_to: Collection[TopicPartition] = (),
) -> None:
    """Where a rebuild re-reads from: each partition of ``start`` from its first record no
    older (record time) than its topic's horizon before ``newest_ms``, as far back as a
    fact of that topic can matter, plus the allowed lateness (``orders_horizon_ms``: an
    hour of orders; ``incidents_horizon_ms``: the error budget's 30 days). ``start`` is
    lowered to that record, never below ``begin``; a partition of ``raise_to`` (one whose
    older records are not this runtime's to process) is moved up to it as well."""
    s = settings
    late = s.allowed_lateness_ms
    horizons = {
        s.orders_topic: s.orders_horizon_ms + late,
        s.incidents_topic: s.incidents_horizon_ms + late,
    }
    for topic, horizon in horizons.items():
        tps = [tp for tp in start if tp[0] == topic]
        found = await offsets_for_time(tps, newest_ms - horizon)
        for tp in tps:
            at = found.get(tp)
            if at is not None and (at < start[tp] or tp in raise_to):
                start[tp] = max(at, begin[tp])


class OffsetLookups(Protocol):
    """What a rebuild asks the broker (``KafkaTransport``, the memory transport, and the
    Faust runtime's ``PartitionReader`` answer it)."""

    async def committed_metadata(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str] | None]: ...

    async def beginning(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def timestamp_before(self, tp: TopicPartition, offset: int) -> int | None: ...

    async def offsets_for_time(
        self, tps: Collection[TopicPartition], ts_ms: int
    ) -> dict[TopicPartition, int | None]: ...


@dataclass(slots=True)
class RebuildPlan:
    """Where a rebuild reads each input partition from, and what it inherits."""

    # The group's committed offset of every input partition that has one (owned or not).
    committed: dict[TopicPartition, int]
    # The frontiers committed with the owned partitions (what the previous owners published).
    inherited: dict[TopicPartition, Frontier]
    # The first offset each input partition is re-read from.
    start: dict[TopicPartition, int]


async def rebuild_plan(
    lookups: OffsetLookups,
    settings: Settings,
    assigned: frozenset[TopicPartition],
    inputs: frozenset[TopicPartition],
) -> RebuildPlan:
    """Where a rebuild of ``assigned`` (owned) and ``inputs`` (owned and global) re-reads
    from: a partition of its own from its commit, a global one from where its owner
    committed, each then lowered to its topic's horizon before the newest committed
    watermark (``lower_to_horizons``), so that the work follows what is live."""
    found = await lookups.committed_metadata(inputs)
    committed = {tp: c[0] for tp, c in found.items() if c is not None}
    inherited = {
        tp: Frontier.decode(tp, *c) for tp, c in found.items() if c is not None and tp in assigned
    }
    begin = await lookups.beginning(inputs)
    start = {tp: committed.get(tp, begin[tp]) for tp in inputs}
    marks = [f.watermark_ms for f in inherited.values() if f.watermark_ms is not None]
    if marks:
        newest: int | None = max(marks)
    else:  # commits without a frontier (an older version): the records tell the time
        stamps = [await lookups.timestamp_before(tp, c) for tp, c in committed.items() if c > 0]
        known = [t for t in stamps if t is not None]
        newest = max(known) if known else None
    if newest is not None:
        # A global partition never committed: its owner publishes what is older; only the
        # facts that can still matter are needed here.
        fresh = [tp for tp in inputs if tp not in assigned and tp not in committed]
        await lower_to_horizons(
            lookups.offsets_for_time, settings, start, begin, newest, raise_to=fresh
        )
    return RebuildPlan(committed, inherited, start)


@dataclass(slots=True)
class BatchOutput:
    """What the records of one batch produced: the output records to deliver, and for
    the metrics each published decision with the event time of its cause, and the largest
    event time processed per partition."""

    out: list[OutRecord] = field(default_factory=list)
    decided: list[Decision] = field(default_factory=list)
    causes: list[int] = field(default_factory=list)
    stamps: dict[TopicPartition, int] = field(default_factory=dict)


def process_one(
    settings: Settings,
    stats: AppStats,
    metrics: Metrics,
    pipeline: Pipeline,
    item: Event | DeadLetter,
    cause: TopicPartition,
    offset: int,
    ts_ms: int | None,
    owned: Collection[TopicPartition],
    resume: Mapping[TopicPartition, int],
    partition_of: Callable[[str, bytes], int],
    inherited: Mapping[TopicPartition, Frontier],
    batch: BatchOutput,
) -> None:
    """Process one merged record (record ``offset`` of ``cause``) and add what this
    instance publishes of its output to ``batch``: its dead letters when this instance
    owns the record's partition and the record is past what the rebuild re-reads, its
    decisions as ``publishable`` says."""
    # A dead letter changes no state: it is not the pipeline's.
    result = StepResult([], [item]) if isinstance(item, DeadLetter) else pipeline.process(item)
    stats.records += 1
    if result.dead_letters:
        # A record's dead letter is its owner's to publish, once.
        if cause in owned and offset >= resume.get(cause, 0):
            emit(settings, stats, metrics, (), result.dead_letters, batch.out)
        else:
            stats.suppressed += len(result.dead_letters)
    if result.decisions:
        publish = publishable(
            settings, stats, result, cause, offset, owned, partition_of, inherited
        )
        emit(settings, stats, metrics, publish, (), batch.out)
        batch.decided.extend(publish)
        batch.causes.extend([ts_ms or 0] * len(publish))
    if ts_ms is not None and ts_ms > batch.stamps.get(cause, -(2**63)):
        batch.stamps[cause] = ts_ms


def publishable(
    settings: Settings,
    stats: AppStats,
    result: StepResult,
    cause: TopicPartition,
    offset: int,
    owned: Collection[TopicPartition],
    partition_of: Callable[[str, bytes], int],
    inherited: Mapping[TopicPartition, Frontier],
) -> list[Decision]:
    """Which of a step's decisions this instance publishes (contract section 5); the
    step processed record ``offset`` of ``cause``.

    A decision is *global* when the clock or an incident caused it and all its facts
    are of global types (incidents): every instance fires it, and the owner of the
    incidents partition its key hashes to publishes it. Any other decision fired here
    is this instance's: it holds the order. Either way it is not published again when
    the frontier its home partition was committed with says it was (frontier.py).
    """
    s = settings
    timed = result.timed
    out: list[Decision] = []
    for d in result.decisions:
        clocked = bool(timed) and any(t is d for t in timed)
        local_cause = not clocked and cause[0] == s.orders_topic
        if not local_cause and all(is_global_type(f["type"]) for f in d.facts):
            home = (s.incidents_topic, partition_of(s.incidents_topic, d.key.encode()))
            if home not in owned:
                stats.not_owned += 1
                continue
        elif local_cause:
            home = cause
        else:  # an order's decision caused by an incident or the clock: its key's
            home = (s.orders_topic, partition_of(s.orders_topic, d.key.encode()))
        frontier = inherited.get(home)
        if frontier is not None and (
            frontier.fired(decision_time_ms(d.event_time))
            if clocked and frontier.watermark_ms is not None
            else frontier.published(cause, offset)
        ):
            stats.suppressed += 1
            continue
        out.append(d)
    return out


def decision_time_ms(event_time: str) -> int:
    """Epoch ms of a decision's ``event_time``: format_ms output, which the decoder's
    cached parser takes."""
    return (parse_event_time(event_time) or parse_rfc3339(event_time))[1]


def emit(
    settings: Settings,
    stats: AppStats,
    metrics: Metrics,
    decisions: Sequence[Decision],
    dead_letters: Sequence[DeadLetter],
    out: list[OutRecord],
) -> None:
    """Append the records of ``decisions`` and ``dead_letters`` to ``out`` and count
    them (the runtime decides which of a step's output it publishes)."""
    s = settings
    for d in decisions:
        out.append(
            _make_out(
                s.decisions_topic,
                d.key.encode(),
                d.to_json(),
                (("rule", d.rule.encode()), ("decision_id", d.decision_id.encode())),
                decision_time_ms(d.event_time),
            )
        )
        stats.decisions += 1
        by_rule = stats.decisions_by_rule
        by_rule[d.rule] = by_rule.get(d.rule, 0) + 1
        metrics.decision(d.rule)
    for dl in dead_letters:
        r = dl.record
        out.append(
            OutRecord(
                s.dlq_topic,
                r.key,
                r.value,
                tuple(dead_letter_headers(r, dl.reason, dl.message)),
            )
        )
        stats.dead_letters += 1
        by_reason = stats.dead_letters_by_reason
        by_reason[dl.reason] = by_reason.get(dl.reason, 0) + 1
        metrics.dead_letter(dl.reason)
