"""Facts stage, the event-time clock: watermark and allowed lateness (contract section 2).

The processor never reads the wall clock. Its time is the watermark: the largest event
``ts`` processed so far, which never moves back. An event older than the watermark minus
the allowed lateness is late (dead letter ``late_event``); a less late one is applied.
"""

from __future__ import annotations

from streamrules.errors import ConfigError

__all__ = ["DEFAULT_ALLOWED_LATENESS_MS", "EventClock"]

DEFAULT_ALLOWED_LATENESS_MS = 60_000


class EventClock:
    """The watermark (``None`` before the first event) and the lateness rule."""

    __slots__ = ("allowed_lateness_ms", "watermark_ms")

    def __init__(self, allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS) -> None:
        if allowed_lateness_ms < 0:
            raise ConfigError(f"allowed lateness must be >= 0 ms, got {allowed_lateness_ms}")
        self.allowed_lateness_ms = allowed_lateness_ms
        self.watermark_ms: int | None = None

    def is_late(self, ts_ms: int) -> bool:
        """Whether an event at ``ts_ms`` is older than watermark - allowed lateness."""
        wm = self.watermark_ms
        return wm is not None and ts_ms < wm - self.allowed_lateness_ms

    def advance(self, ts_ms: int) -> int:
        """Move the watermark to max(watermark, ts_ms) and return it."""
        wm = self.watermark_ms
        if wm is None or ts_ms > wm:
            self.watermark_ms = wm = ts_ms
        return wm
