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

    The same object as ``cls(...)``, at a fraction of the cost, for the per-event paths (a
    record, an event and a decision each); everywhere else call the class. A frozen
    dataclass sets its fields through ``object.__setattr__`` (its ``__init__`` does) or
    the slot descriptors, C calls that each cost more than the stores themselves. Here
    the fields are stored plainly on an object of a look-alike class, with the same slots
    and no ``__setattr__``, which then becomes a ``cls``: Python lets ``__class__`` change
    between classes of one layout, and the object is frozen from then on.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    slots = getattr(cls, "__slots__", None)
    if slots is None or list(slots) != names or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass of its fields alone")
    twin = type(f"_{cls.__name__}Slots", (), {"__slots__": tuple(slots)})
    scope: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    obj = _new(_twin)"]
    lines += [f"    obj.{name} = {name}" for name in names]
    lines += ["    obj.__class__ = _cls", "    return obj"]
    exec("\n".join(lines), scope)  # the names are the class's own field names
    maker: Callable[..., _T] = scope["make"]
    return maker
