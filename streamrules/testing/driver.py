"""Test driver: the whole processor (codec, facts, clock, rules) without a broker.

``RulesTestDriver`` is to streamrules what ``TopologyTestDriver`` is to Kafka Streams:
feed events (dicts, JSON bytes or records), move event time, read the decisions and dead
letters, look at working memory. Records go through the same ``Pipeline`` as in the
service, decoding included, so a malformed event becomes a dead letter here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson

from streamrules.codec import Decision, Record, format_ms, parse_rfc3339, topic_for_type
from streamrules.errors import ConfigError
from streamrules.facts import DEFAULT_ALLOWED_LATENESS_MS
from streamrules.pipeline import DeadLetter, Pipeline, StepResult
from streamrules.rete import Fact
from streamrules.rules import DEFAULT_RULES, RuleSpec

__all__ = ["RulesTestDriver", "TimeLike", "to_ms"]

TimeLike = str | datetime | int


def to_ms(when: TimeLike) -> int:
    """Epoch milliseconds of an RFC 3339 string, an aware datetime or epoch ms."""
    if isinstance(when, bool):
        raise TypeError("a time must be an RFC 3339 string, an aware datetime or epoch ms")
    if isinstance(when, int):
        return when
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("a datetime for event time must be aware (have a tzinfo)")
        return parse_rfc3339(when.isoformat())[1]
    return parse_rfc3339(when)[1]


class RulesTestDriver:
    """Drive rules with events on event time, and inspect what they did.

    ``rules`` are module paths, ``.py`` files, modules or ``Production`` objects (default:
    both bundled packs). ``start`` is the time given to events sent without a ``ts``
    until the first event moves the clock.
    """

    def __init__(
        self,
        rules: Sequence[RuleSpec] | RuleSpec = DEFAULT_RULES,
        *,
        allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS,
        start: TimeLike | None = None,
    ) -> None:
        specs: Sequence[RuleSpec] = (
            list(rules) if isinstance(rules, (list, tuple)) else [rules]  # type: ignore[list-item]
        )
        self.pipeline = Pipeline(specs, allowed_lateness_ms=allowed_lateness_ms)
        self._start = None if start is None else to_ms(start)
        self._offsets: dict[str, int] = {}
        self.decisions: list[Decision] = []
        """Every decision so far, in firing order."""
        self.dead_letters: list[DeadLetter] = []
        """Every dead letter so far, in order."""
        self._read = 0

    # -- input -------------------------------------------------------------------------------

    def send(
        self,
        event: Mapping[str, Any] | bytes | Record,
        *,
        topic: str | None = None,
        key: str | bytes | None = None,
    ) -> StepResult:
        """Process one event; returns what it caused (also appended to ``decisions``).

        A dict is JSON-encoded; a missing ``ts`` is the driver's current time (``now``);
        a ``datetime`` ``ts`` is formatted. Its topic defaults to the one of its ``type``
        and its key to the contract's key field.
        """
        result = self.pipeline.process(self._record(event, topic, key))
        self.decisions.extend(result.decisions)
        self.dead_letters.extend(result.dead_letters)
        return result

    def send_many(self, events: Iterable[Mapping[str, Any] | bytes | Record]) -> StepResult:
        """Process events in order (one at a time semantics); returns what they caused."""
        total = StepResult()
        for event in events:
            step = self.send(event)
            total.decisions.extend(step.decisions)
            total.dead_letters.extend(step.dead_letters)
        return total

    def advance_to(self, when: TimeLike) -> StepResult:
        """Move event time forward to ``when``: expiries and timers due fire."""
        result = self.pipeline.advance_to(to_ms(when))
        self.decisions.extend(result.decisions)
        self.dead_letters.extend(result.dead_letters)
        return result

    def advance_by(self, delta: timedelta | int) -> StepResult:
        """Move event time forward by ``delta`` (a timedelta or milliseconds)."""
        ms = delta if isinstance(delta, int) else int(delta / timedelta(milliseconds=1))
        return self.advance_to(self.now_ms + ms)

    # -- output ------------------------------------------------------------------------------

    def read_decisions(self) -> list[Decision]:
        """Decisions made since the last call (like reading an output topic)."""
        new = self.decisions[self._read :]
        self._read = len(self.decisions)
        return new

    def decisions_of(self, rule: str) -> list[Decision]:
        """Every decision so far of one rule."""
        return [d for d in self.decisions if d.rule == rule]

    def payloads(self, rule: str) -> list[Mapping[str, Any]]:
        """The payloads of ``decisions_of(rule)``."""
        return [d.payload for d in self.decisions_of(rule)]

    def facts(self, fact_type: type[Fact] | str | None = None) -> list[Fact]:
        """The live facts, optionally of one type (a class or its name)."""
        found = list(self.pipeline.net.facts)
        if fact_type is None:
            return found
        if isinstance(fact_type, str):
            return [f for f in found if type(f).__name__ == fact_type]
        return [f for f in found if type(f) is fact_type]

    def expiry_of(self, fact: Fact) -> str | None:
        """When a live fact will expire (RFC 3339), or ``None`` if it never does."""
        ms = self.pipeline.memory.index.expiry_of(fact)
        return None if ms is None else format_ms(ms)

    @property
    def watermark(self) -> str | None:
        wm = self.pipeline.watermark_ms
        return None if wm is None else format_ms(wm)

    @property
    def now_ms(self) -> int:
        """The watermark, or ``start`` before the first event."""
        wm = self.pipeline.watermark_ms
        if wm is not None:
            return wm
        if self._start is None:
            raise ConfigError(
                "the driver has no time yet: pass start=... or send an event with a ts"
            )
        return self._start

    def stats(self) -> Mapping[str, Any]:
        return self.pipeline.stats()

    # -- records -------------------------------------------------------------------------------

    def _record(
        self, event: Mapping[str, Any] | bytes | Record, topic: str | None, key: str | bytes | None
    ) -> Record:
        if isinstance(event, Record):
            return event
        if isinstance(event, Mapping):
            data = dict(event)
            if "ts" not in data:
                data["ts"] = format_ms(self.now_ms)
            elif isinstance(data["ts"], datetime):
                data["ts"] = data["ts"].isoformat()
            value = orjson.dumps(data)
            etype = data.get("type")
            if topic is None and isinstance(etype, str):
                try:
                    topic = topic_for_type(etype)
                except KeyError:
                    topic = None
            if key is None:
                field = "customer_id" if etype == "order_placed" else "service"
                raw = data.get(field)
                key = raw if isinstance(raw, str) else None
        else:
            value = event
        topic = topic or ""
        offset = self._offsets.get(topic, 0)
        self._offsets[topic] = offset + 1
        key_bytes = key.encode() if isinstance(key, str) else key
        return Record(topic=topic, partition=0, offset=offset, key=key_bytes, value=value)
