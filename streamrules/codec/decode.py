"""Codec stage, input: record bytes -> a validated ``Event``, or a ``DecodeError``.

Order of checks, each giving its dead-letter reason: JSON object (``invalid_json``),
``type`` known (``unknown_type``), the type's JSON Schema from ``topics/schemas``
(``schema``), the record's topic (``schema``), then the event time (``schema``). Messages
name the field, e.g. ``items[1].qty: must be >= 1 (got 0)``.

Most records take a fast path that gives the same result: the schema's generated check
(``EventSchema.decoder_check``) and ``parse_event_time``, which checks the ``ts`` grammar
while it parses. Anything they are not sure of goes the slow path above, in that order,
for the detailed error.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import fastjsonschema
import orjson

from streamrules.codec.events import Event, Record, positional_maker
from streamrules.codec.schemas import EventSchema, event_schemas
from streamrules.codec.timefmt import parse_checked, parse_event_time
from streamrules.errors import DecodeError

__all__ = ["Decoder", "decode", "event_types", "topic_for_type"]

_make_event = positional_maker(Event)  # one per record: the hot path
_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
}


class _Kind:
    """What the decoder needs of one event type (``EventSchema``), for one set of topics."""

    __slots__ = ("check", "decoder_check", "topic", "validate", "wrong_topics")

    def __init__(self, schema: EventSchema, topic: str, input_topics: frozenset[str]) -> None:
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
    """

    def __init__(self, topic_names: Mapping[str, str] | None = None) -> None:
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

    def decode(self, record: Record) -> Event:
        """Validate one record; raise ``DecodeError`` naming the reason and the field."""
        try:
            obj = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            raise _error(record, "invalid_json", _json_problem(record.value, exc)) from None
        if type(obj) is not dict:
            raise _error(record, "invalid_json", f"not a JSON object but {_json_kind(obj)}")
        try:
            event_type: str = obj["type"]
            kind = self._kinds[event_type]
        except (KeyError, TypeError):  # no type, another one, or one not hashable (a list)
            raise self._unknown_type(record, obj) from None
        # The fast path: certainly valid, the time parsed while its grammar is checked.
        if kind.decoder_check(obj) and (times := parse_event_time(obj["ts"])) is not None:
            if record.topic in kind.wrong_topics:
                raise _wrong_topic(record, event_type, kind.topic)
            return _make_event(event_type, times[0], times[1], obj, record)
        return self._decode_slowly(record, obj, event_type, kind)

    def _decode_slowly(self, record: Record, obj: Any, event_type: str, kind: _Kind) -> Event:
        """``decode`` after the fast path said "not certain": the full validator for the
        detailed error, then the topic, then the time."""
        if not kind.check(obj):
            try:
                kind.validate(obj)
            except fastjsonschema.JsonSchemaValueException as exc:
                raise _error(record, "schema", _schema_problem(exc)) from None
        if record.topic in kind.wrong_topics:
            raise _wrong_topic(record, event_type, kind.topic)
        try:
            ts, ts_ms = parse_checked(obj["ts"])
        except ValueError as exc:
            raise _error(record, "schema", f"ts: {exc} (got {_show(obj['ts'])})") from None
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
