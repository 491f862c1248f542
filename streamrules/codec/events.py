"""Codec stage, shapes: the input record as the transport saw it, and the validated event.

These two values cross every seam of the flow (transport -> codec -> pipeline), so they are
frozen, slotted and free of behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["Event", "Record"]


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
