"""Shared by the runtimes (``app.py`` on aiokafka, ``streamrules.faust`` on Faust): the
pipeline and decoder a runtime builds from ``Settings``, and the output records of one
processed event (decisions to ``decisions``, dead letters to ``decisions.dlq``).

One place for these, so that both runtimes publish the same records (topics, keys,
values, headers, record timestamps) and count them the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping, Sequence
from typing import TYPE_CHECKING

from streamrules.codec import Decision, Decoder, dead_letter_headers, parse_rfc3339
from streamrules.codec.decode import wall_clock_ms
from streamrules.codec.events import positional_maker
from streamrules.codec.timefmt import parse_event_time
from streamrules.config import Settings
from streamrules.metrics import Metrics
from streamrules.pipeline import DeadLetter, Pipeline
from streamrules.transport.base import OutRecord, TopicPartition

if TYPE_CHECKING:
    from streamrules.app import AppStats

__all__ = ["decision_time_ms", "emit", "lower_to_horizons", "new_decoder", "new_pipeline"]

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
