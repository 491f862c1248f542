"""Codec stage, schemas: compile the JSON Schemas of ``topics/schemas`` (read by
``streamrules.topics``) into validators.

The schema files are the one source of truth for event shapes: which event types exist,
which topic each belongs to (``x-topic``), which field is its record key (``x-key``), and
what a valid event looks like. The codec compiles them once, with fastjsonschema, into
plain Python validators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import fastjsonschema

from streamrules.codec.fastcheck import compile_check
from streamrules.codec.timefmt import EVENT_TIME_PATTERN
from streamrules.errors import ConfigError
from streamrules.topics import SCHEMAS_DIR, load_schemas

__all__ = ["EventSchema", "event_schemas"]


@dataclass(frozen=True, slots=True)
class EventSchema:
    """One input event type: its JSON Schema, topic, record-key field and validators.

    ``check`` is the fast, sound predicate (``True``: valid); ``validate`` the full
    validator that raises ``fastjsonschema.JsonSchemaValueException`` with the details.
    ``decoder_check`` is ``check`` for the decoder, which has already seen that the event
    is an object of this ``type`` (those tests are left out) and which tests the ``ts``
    pattern while parsing the time (``parse_event_time``): when the schema's pattern is
    ``EVENT_TIME_PATTERN``, that test is left out too. The decoder's fast path,
    ``decoder_check(e) and parse_event_time(e["ts"]) is not None``, is then as sound as
    ``check``. For a schema whose ``ts`` is not a required string it is never ``True``
    (every event takes the slow path).
    """

    type: str
    topic: str
    key_field: str
    schema: Mapping[str, Any]
    check: Callable[[Any], bool]
    validate: Callable[[Any], Any]
    decoder_check: Callable[[Any], bool]


@cache
def event_schemas() -> Mapping[str, EventSchema]:
    """Every input event type, by ``type``: the schemas of ``topics/schemas`` that declare
    an ``x-topic`` and a constant ``type`` property."""
    found: dict[str, EventSchema] = {}
    for schema in load_schemas().values():
        const = schema.get("properties", {}).get("type", {}).get("const")
        if not isinstance(const, str) or "x-topic" not in schema:
            continue  # decision and dead-letter shapes: documentation, not input
        # Formats are off: the codec parses times itself (stricter than the format check)
        # and a second regular expression per event would only cost time.
        validate = fastjsonschema.compile(schema, use_formats=False)
        found[const] = EventSchema(
            const,
            schema["x-topic"],
            schema["x-key"],
            schema,
            compile_check(schema),
            validate,
            _decoder_check(schema, const),
        )
    if not found:
        raise ConfigError(f"no input event schemas found in {SCHEMAS_DIR}")
    return found


def _decoder_check(schema: Mapping[str, Any], event_type: str) -> Callable[[Any], bool]:
    """``EventSchema.decoder_check`` for ``schema``."""
    ts = schema.get("properties", {}).get("ts")
    if "ts" not in schema.get("required", ()) or not isinstance(ts, Mapping):
        return _never
    if ts.get("type") != "string":
        return _never
    return compile_check(
        schema, given={"type": event_type}, unchecked_patterns={"ts": EVENT_TIME_PATTERN}
    )


def _never(instance: Any) -> bool:
    return False
