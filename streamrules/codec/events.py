"""Codec stage, shapes: the input record as the transport saw it, and the validated event.

These two values cross every seam of the flow (transport -> codec -> pipeline), so they are
frozen, slotted and free of behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

__all__ = ["Event", "Record", "positional_maker"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Record:
    """One input record: where it came from and its raw bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Event:
    """A validated input event.

    ``data`` is the decoded JSON object, unknown extra fields included; ``ts`` is aware and
    in UTC; ``ts_ms`` is the same instant in epoch milliseconds (the clock's unit).
    """

    type: str
    ts: datetime
    ts_ms: int
    data: Mapping[str, Any]
    record: Record | None = None


def positional_maker(cls: type[_T]) -> Callable[..., _T]:
    """A constructor for a frozen, slotted dataclass taking every field positionally.

    The same object as ``cls(...)``, at half the cost: the generated ``__init__`` of a
    frozen dataclass goes through ``object.__setattr__`` once per field, this sets the
    slots directly. For the per-event paths (a record, an event and a decision each);
    everywhere else call the class.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = _new(_cls)"]
    for name in names:
        scope[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(obj, {name})")
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # the names are the class's own field names
    maker: Callable[..., _T] = scope["make"]
    return maker
