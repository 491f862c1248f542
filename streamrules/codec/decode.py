"""Codec stage, input: record bytes -> a validated ``Event``, or a ``DecodeError``.

Order of checks, each giving its dead-letter reason: the record's size against
``max_record_bytes`` (``schema``, before any decoding: a huge record costs no more than
its own bytes), JSON object (``invalid_json``; a number too large for a double is
``schema``), ``type`` known (``unknown_type``), the type's JSON Schema from
``topics/schemas`` (``schema``), the numbers of an order (I-JSON, a finite total:
``schema``), the record's topic (``schema``), the event time (``schema``), then the event
time against the wall clock (``future_event``, when ``max_future_ms`` is above 0).
Messages name the field, e.g. ``items[1].qty: must be >= 1 (got 0)``.

The service, ``streamrules replay`` and the pipeline all decode through this class, so
these checks are made in this one place; the wall clock is a callable given to it (the
service's real clock, replay's ``--now``, a test's).

Most records take a fast path that gives the same result: the schema's generated check
(``EventSchema.decoder_check``) and ``parse_event_time``, which checks the ``ts`` grammar
while it parses. Anything they are not sure of goes the slow path above, in that order,
for the detailed error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import fastjsonschema
import orjson

from streamrules.codec.events import Event, Record, positional_maker
from streamrules.codec.schemas import EventSchema, event_schemas
from streamrules.codec.timefmt import format_ms, parse_checked, parse_event_time
from streamrules.errors import DecodeError

__all__ = [
    "MAX_SAFE_INTEGER",
    "Decoder",
    "decode",
    "event_types",
    "order_numbers_problem",
    "topic_for_type",
    "wall_clock_ms",
]

# I-JSON (RFC 7493): integers within +-(2^53 - 1) are those every JSON reader holds exactly.
MAX_SAFE_INTEGER = 2**53 - 1

_make_event = positional_maker(Event)  # one per record: the hot path
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
}


def wall_clock_ms() -> int:
    """The wall clock in epoch milliseconds: the default reference of the future check."""
    return time.time_ns() // 1_000_000


def order_numbers_problem(data: Mapping[str, Any]) -> str | None:
    """What is wrong with the numbers of a schema-valid ``order_placed`` (contract section
    1: I-JSON, and a total that is a finite double), or ``None``. (The schema bounds
    ``qty``; a JSON integer ``price`` beyond 2^53 - 1 and the total are checked here.)

    The total is computed as the ``Order`` fact computes it (``facts.mapping.order_fact``):
    sum of qty * price, in item order. Once per order: kept to one plain loop.
    """
    total = 0
    for item in data["items"]:
        price = item["price"]
        if type(price) is int and price > MAX_SAFE_INTEGER:
            return _big_price(data["items"])
        total += item["qty"] * price
    if type(total) is float:
        if total - total != 0.0:  # inf - inf is NaN, as is NaN - NaN
            return "items: the order's total (sum of qty * price) is not a finite number"
    elif total > MAX_SAFE_INTEGER:
        return f"items: the order's total (sum of qty * price) is above {MAX_SAFE_INTEGER} (I-JSON)"
    return None


def _big_price(items: list[Mapping[str, Any]]) -> str:
    i, price = next(
        (i, item["price"])
        for i, item in enumerate(items)
        if type(item["price"]) is int and item["price"] > MAX_SAFE_INTEGER
    )
    return f"items[{i}].price: an integer must be <= {MAX_SAFE_INTEGER} (I-JSON) (got {price})"


# Event types whose numbers need more than their schema can say.
_NUMBER_CHECKS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "order_placed": order_numbers_problem
}


class _Kind:
    """What the decoder needs of one event type (``EventSchema``), for one set of topics."""

    __slots__ = ("check", "decoder_check", "numbers", "topic", "validate", "wrong_topics")

    def __init__(self, schema: EventSchema, topic: str, input_topics: frozenset[str]) -> None:
        self.numbers = _NUMBER_CHECKS.get(schema.type)
        self.decoder_check = schema.decoder_check
        self.check = schema.check
        self.validate = schema.validate
        self.topic = topic
        # The input topics other than its own: a record read from one is on the wrong topic.
        self.wrong_topics = input_topics - {topic}


class Decoder:
    """Decodes records for one set of topic names.

    ``topic_names`` renames the logical topics of the schemas (``orders``, ``incidents``)
    to the names used on the broker. A record read from one of these input topics must
    carry an event type of that topic; records from any other topic name (``""`` when
    unknown) are not topic-checked.

    ``max_record_bytes``: a record value longer than this is a ``schema`` dead letter
    without being decoded (``None``: no limit). ``max_future_ms``: an event whose ``ts``
    is more than this ahead of ``wall_clock_ms()`` is a ``future_event`` dead letter (0:
    no check; the service's default is one hour, replay's none).
    """

    def __init__(
        self,
        topic_names: Mapping[str, str] | None = None,
        *,
        max_record_bytes: int | None = None,
        max_future_ms: int = 0,
        wall_clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if max_future_ms < 0:
            raise ValueError(f"max_future_ms must be >= 0, got {max_future_ms}")
        if max_record_bytes is not None and max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1, got {max_record_bytes}")
        self.max_record_bytes = max_record_bytes
        self.max_future_ms = max_future_ms
        self.wall_clock_ms = wall_clock_ms
        names = dict(topic_names or {})
        schemas = event_schemas()
        topic_of = {t: names.get(s.topic, s.topic) for t, s in schemas.items()}
        input_topics = frozenset(topic_of.values())
        self._kinds: dict[str, _Kind] = {
            t: _Kind(s, topic_of[t], input_topics) for t, s in schemas.items()
        }

    def topic_for(self, event_type: str) -> str:
        """The topic an event type belongs on (``KeyError`` for an unknown type)."""
        return self._kinds[event_type].topic

    def too_large(self, size: int) -> str | None:
        """The dead-letter message for a record value of ``size`` bytes above
        ``max_record_bytes``, else ``None``."""
        limit = self.max_record_bytes
        if limit is None or size <= limit:
            return None
        return f"record value is larger than max_record_bytes ({limit} bytes): not decoded"

    def decode(self, record: Record) -> Event:
        """Validate one record; raise ``DecodeError`` naming the reason and the field."""
        value = record.value
        if value is None:  # a Kafka tombstone: deletes a key, carries no event
            raise _error(record, "invalid_json", "no value (a tombstone): not an event")
        limit = self.max_record_bytes
        if limit is not None and len(value) > limit:
            raise _error(record, "schema", self.too_large(len(value)) or "")
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise _json_error(record, exc) from None
        if type(obj) is not dict:
            raise _error(record, "invalid_json", f"not a JSON object but {_json_kind(obj)}")
        try:
            event_type: str = obj["type"]
            kind = self._kinds[event_type]
        except (KeyError, TypeError):  # no type, another one, or one not hashable (a list)
            raise self._unknown_type(record, obj) from None
        # The fast path: certainly valid, the time parsed while its grammar is checked.
        if kind.decoder_check(obj) and (times := parse_event_time(obj["ts"])) is not None:
            numbers = kind.numbers
            if numbers is not None and (problem := numbers(obj)) is not None:
                raise _error(record, "schema", problem)
            if record.topic in kind.wrong_topics:
                raise _wrong_topic(record, event_type, kind.topic)
            if self.max_future_ms:
                self._check_future(record, times[1])
            return _make_event(event_type, times[0], times[1], obj, record)
        return self._decode_slowly(record, obj, event_type, kind)

    def _check_future(self, record: Record, ts_ms: int) -> None:
        now = self.wall_clock_ms()
        if ts_ms > now + self.max_future_ms:
            raise _error(
                record,
                "future_event",
                f"ts {format_ms(ts_ms)} is more than max_future_ms ({self.max_future_ms} ms) "
                f"ahead of the wall clock {format_ms(now)}",
            )

    def _decode_slowly(self, record: Record, obj: Any, event_type: str, kind: _Kind) -> Event:
        """``decode`` after the fast path said "not certain": the full validator for the
        detailed error, then the topic, then the time."""
        if not kind.check(obj):
            try:
                kind.validate(obj)
            except fastjsonschema.JsonSchemaValueException as exc:
                raise _error(record, "schema", _schema_problem(exc)) from None
        if kind.numbers is not None and (problem := kind.numbers(obj)) is not None:
            raise _error(record, "schema", problem)
        if record.topic in kind.wrong_topics:
            raise _wrong_topic(record, event_type, kind.topic)
        try:
            ts, ts_ms = parse_checked(obj["ts"])
        except ValueError as exc:
            raise _error(record, "schema", f"ts: {exc} (got {_show(obj['ts'])})") from None
        if self.max_future_ms:
            self._check_future(record, ts_ms)
        return _make_event(event_type, ts, ts_ms, obj, record)

    def _unknown_type(self, record: Record, obj: dict[str, Any]) -> DecodeError:
        if "type" not in obj:
            return _error(record, "unknown_type", "type: missing")
        known = ", ".join(sorted(self._kinds))
        return _error(record, "unknown_type", f"type: {_show(obj['type'])} is not one of {known}")


@cache
def _default() -> Decoder:
    return Decoder()


def decode(record: Record) -> Event:
    """Decode with the schemas' own topic names (docs/interfaces.md section 2)."""
    return _default().decode(record)


def topic_for_type(event_type: str) -> str:
    """The schemas' topic for an event type (``KeyError`` for an unknown type)."""
    return _default().topic_for(event_type)


def event_types() -> tuple[str, ...]:
    """The known input event types, sorted."""
    return tuple(sorted(event_schemas()))


def _wrong_topic(record: Record, event_type: str, topic: str) -> DecodeError:
    return _error(
        record,
        "schema",
        f"type: {event_type} belongs on topic {topic!r}, not {record.topic!r}",
    )


def _json_error(record: Record, exc: orjson.JSONDecodeError) -> DecodeError:
    # orjson refuses a number beyond a double's range ("number is infinity when parsed as
    # double"): valid JSON, outside I-JSON, so a schema problem (contract section 1).
    if "infinity" in str(exc):
        return _error(record, "schema", f"a number is too large for a double (I-JSON): {exc}")
    return _error(record, "invalid_json", _json_problem(record.value, exc))


def _error(record: Record, reason: str, message: str) -> DecodeError:
    return DecodeError(
        reason, message, topic=record.topic, partition=record.partition, offset=record.offset
    )


def _show(value: Any, limit: int = 40) -> str:
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _json_problem(value: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return f"not UTF-8 (byte {uexc.start})"
    if not value:  # Kafka clients hand a tombstone (no value) on as empty bytes too
        return "not JSON: empty record (no value: a tombstone?)"
    if not value.strip():
        return "not JSON: empty record"
    return f"not JSON: {exc}"


def _schema_problem(exc: fastjsonschema.JsonSchemaValueException) -> str:
    name = exc.name or "data"
    field = name[4:].lstrip(".") if name.startswith("data") else name
    rule = exc.rule
    definition: Any = exc.rule_definition
    if rule == "required":
        have = exc.value if isinstance(exc.value, dict) else {}
        missing = next((f for f in definition if f not in have), "?")
        return f"{field}.{missing}: missing" if field else f"{missing}: missing"
    where = field or "event"
    if rule == "type":
        wanted = _TYPE_NAMES.get(str(definition), str(definition))
        return f"{where}: must be {wanted} (got {_show(exc.value)})"
    if rule in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        return f"{where}: must be {op[rule]} {definition} (got {_show(exc.value)})"
    if rule == "minLength" and definition == 1:
        return f"{where}: must not be empty"
    if rule == "const":
        return f"{where}: must be {_show(definition)} (got {_show(exc.value)})"
    if rule == "enum":
        return f"{where}: must be one of {_show(definition, 80)} (got {_show(exc.value)})"
    if rule == "pattern" and exc.definition.get("format") == "date-time":
        return (
            f"{where}: must be an RFC 3339 date-time with a zone, e.g. 2026-11-27T10:00:00Z "
            f"(got {_show(exc.value)})"
        )
    message = str(exc.message)
    return message[5:] if message.startswith("data.") else message
