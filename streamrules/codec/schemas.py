"""Codec stage, schemas: load the JSON Schemas of ``topics/schemas`` and compile them.

The schema files are the one source of truth for event shapes: which event types exist,
which topic each belongs to (``x-topic``), which field is its record key (``x-key``), and
what a valid event looks like. The codec compiles them once, with fastjsonschema, into
plain Python validators.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from streamrules.codec.fastcheck import compile_check
from streamrules.errors import ConfigError

__all__ = ["SCHEMA_DIR", "EventSchema", "event_schemas", "load_schema"]

# The repository layout puts topics/ next to the package (docs/interfaces.md section 5).
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "topics" / "schemas"


@dataclass(frozen=True, slots=True)
class EventSchema:
    """One input event type: its JSON Schema, topic, record-key field and validators.

    ``check`` is the fast, sound predicate (``True``: valid); ``validate`` the full
    validator that raises ``fastjsonschema.JsonSchemaValueException`` with the details.
    """

    type: str
    topic: str
    key_field: str
    schema: Mapping[str, Any]
    check: Callable[[Any], bool]
    validate: Callable[[Any], Any]


def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON Schema ``topics/schemas/<name>.json``."""
    path = SCHEMA_DIR / f"{name}.json"
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load JSON Schema {path}: {exc}") from None
    return loaded


@cache
def event_schemas() -> Mapping[str, EventSchema]:
    """Every input event type, by ``type``: the schemas that declare an ``x-topic`` and a
    constant ``type`` property."""
    found: dict[str, EventSchema] = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = load_schema(path.stem)
        const = schema.get("properties", {}).get("type", {}).get("const")
        if not isinstance(const, str) or "x-topic" not in schema:
            continue  # decision and dead-letter shapes: documentation, not input
        # Formats are off: the codec parses times itself (stricter than the format check)
        # and a second regular expression per event would only cost time.
        validate = fastjsonschema.compile(schema, use_formats=False)
        found[const] = EventSchema(
            const, schema["x-topic"], schema["x-key"], schema, compile_check(schema), validate
        )
    if not found:
        raise ConfigError(f"no input event schemas found in {SCHEMA_DIR}")
    return found
