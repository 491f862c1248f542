"""Codec stage, output: firings -> decision records, and the dead-letter record headers.

A ``Decision`` is the contract's section 3 object; ``to_json`` writes it with the keys in
the contract's order. ``decision_id`` hashes a canonical encoding of everything that makes
a firing what it is, and nothing positional (offsets, line numbers), so that the Kafka
service and ``streamrules replay`` give the same ids for the same events.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from streamrules.codec.events import Record
from streamrules.codec.timefmt import format_ms
from streamrules.errors import RuleError

__all__ = [
    "DEAD_LETTER_REASONS",
    "Decision",
    "dead_letter_headers",
    "decision_id",
    "decision_id_of",
    "encode_event",
    "not_json_error",
]

DEAD_LETTER_REASONS: tuple[str, ...] = (
    "invalid_json",
    "schema",
    "unknown_type",
    "late_event",
    "future_event",
    "rule_error",
)
# Kafka headers are small; a message is for a human reading the dead-letter topic.
_MESSAGE_LIMIT = 1000
_sha256 = hashlib.sha256
_SORT_KEYS = orjson.OPT_SORT_KEYS


def not_json_error(exc: TypeError, rule: str) -> RuleError:
    """The rule's error for a payload orjson could not encode (``exc``): the rule's fault.

    The same error as ``raise not_json_error(exc, rule) from exc``, for a caller that hands
    it on rather than raising it (the pipeline).
    """
    error = RuleError(f"decision payload is not JSON-serialisable: {exc}", production=rule)
    error.__cause__ = exc
    return error


def _dumps(value: Any, *, rule: str, sort: bool = False) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort else 0)
    except TypeError as exc:  # a payload that is not JSON: the rule's fault
        raise not_json_error(exc, rule) from exc


@dataclass(frozen=True, slots=True)
class Decision:
    """One fired production that emits a decision (CONTRACT.md section 3)."""

    decision_id: str
    rule: str
    key: str
    event_time: str
    payload: Mapping[str, Any]
    facts: tuple[Mapping[str, str], ...]

    @classmethod
    def create(
        cls,
        rule: str,
        key: str,
        event_time_ms: int,
        payload: Mapping[str, Any],
        facts: Sequence[tuple[str, str]] = (),
        occurrence: int = 0,
    ) -> Decision:
        """Build a decision with its deterministic id and formatted event time.

        ``facts`` are ``(type, id)`` pairs; ``occurrence`` as for ``decision_id``.
        """
        did = decision_id(rule, key, event_time_ms, facts, payload, occurrence)
        fact_objs = tuple({"type": t, "id": i} for t, i in facts)
        return cls(did, rule, key, format_ms(event_time_ms), payload, fact_objs)

    def to_dict(self) -> dict[str, Any]:
        """The contract's object as a dict, keys in the contract's order."""
        return {
            "decision_id": self.decision_id,
            "rule": self.rule,
            "key": self.key,
            "event_time": self.event_time,
            "payload": dict(self.payload),
            "facts": [dict(f) for f in self.facts],
        }

    def to_json(self) -> bytes:
        """The contract's JSON object (orjson; keys in the contract's order; compact)."""
        # Called once per decision: orjson gets the payload and the fact objects as they
        # are (it writes tuples as arrays); only a Mapping that is not a dict needs the
        # copies that to_dict makes.
        obj = {
            "decision_id": self.decision_id,
            "rule": self.rule,
            "key": self.key,
            "event_time": self.event_time,
            "payload": self.payload,
            "facts": self.facts,
        }
        try:
            return orjson.dumps(obj)
        except TypeError:
            return _dumps(self.to_dict(), rule=self.rule)

    @classmethod
    def from_json(cls, value: bytes | str) -> Decision:
        """Parse ``to_json`` output back (for consumers and tests)."""
        obj = orjson.loads(value)
        return cls(
            obj["decision_id"],
            obj["rule"],
            obj["key"],
            obj["event_time"],
            obj["payload"],
            tuple(obj["facts"]),
        )


def decision_id(
    rule: str,
    key: str,
    event_time_ms: int,
    facts: Sequence[tuple[str, str]],
    payload: Mapping[str, Any],
    occurrence: int = 0,
    late_at_ms: int | None = None,
) -> str:
    """Deterministic id of one firing: sha256 of a canonical encoding, hex, 32 chars.

    ``occurrence`` counts earlier firings with the same other inputs, so that two firings
    never share an id. Payload keys are sorted; tuples and lists encode alike.
    ``late_at_ms``: for a firing caused by the clock whose time is already behind the
    watermark minus the allowed lateness (a timer a rule set in the past), the watermark
    then; it is part of the id (see ``Pipeline``: the counters of such times cannot be
    kept forever, the watermark tells such firings apart instead).
    """
    refs = [[t, i] for t, i in facts]
    return decision_id_of(rule, key, event_time_ms, refs, payload, occurrence, late_at_ms)


def decision_id_of(
    rule: str,
    key: str,
    event_time_ms: int,
    facts: Sequence[Sequence[str]],
    payload: Mapping[str, Any],
    occurrence: int = 0,
    late_at_ms: int | None = None,
) -> str:
    """``decision_id`` for facts already given as ``(type, id)`` pairs, not unpacked again
    (the pipeline's path: it has checked them). The same id: orjson writes tuples and
    lists alike."""
    canonical: list[Any] = [rule, key, event_time_ms, facts, payload, occurrence]
    if late_at_ms is not None:
        canonical.append(late_at_ms)
    try:
        encoded = orjson.dumps(canonical, option=_SORT_KEYS)
    except TypeError as exc:  # a payload that is not JSON: the rule's fault
        raise not_json_error(exc, rule) from exc
    # orjson writes NaN and infinities as null: a payload would change silently. Only an
    # encoding holding a null can hold one, so the walk is rare.
    if b"null" in encoded and (where := _non_finite(payload, "payload")) is not None:
        raise RuleError(
            f"decision payload is not JSON-serialisable: {where} is not a finite number",
            production=rule,
        )
    return _sha256(encoded).hexdigest()[:32]


def _non_finite(value: Any, where: str) -> str | None:
    """Where in ``value`` a float that is NaN or infinite sits (``payload.a[2]``), if any."""
    if type(value) is float or isinstance(value, float):
        return None if math.isfinite(value) else f"{where} ({value})"
    if isinstance(value, Mapping):
        for k, v in value.items():
            if (found := _non_finite(v, f"{where}.{k}")) is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if (found := _non_finite(v, f"{where}[{i}]")) is not None:
                return found
    return None


def dead_letter_headers(record: Record, reason: str, message: str) -> list[tuple[str, bytes]]:
    """Headers of the dead-letter record for ``record`` (docs/interfaces.md section 4).

    The message is made one line and cut to a bounded length.
    """
    one_line = " ".join(message.split())
    if len(one_line) > _MESSAGE_LIMIT:
        one_line = one_line[: _MESSAGE_LIMIT - 3] + "..."
    return [
        ("source.topic", record.topic.encode()),
        ("source.partition", str(record.partition).encode()),
        ("source.offset", str(record.offset).encode()),
        ("reason", reason.encode()),
        ("message", one_line.encode()),
    ]


def encode_event(event: Mapping[str, Any]) -> bytes:
    """An input event object as record bytes (compact JSON, keys in the given order)."""
    return orjson.dumps(event)
