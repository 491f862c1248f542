"""Service logging: JSON lines (one object per record) or plain text on standard error.

Called once by a command at start; library modules only use ``logging.getLogger``. JSON
fields: ``time`` (wall clock, for operators), ``level``, ``logger``, ``message`` and any
``extra={...}`` values given to the log call.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["ClientLogFilter", "JsonFormatter", "configure_logging"]

# Attributes every LogRecord has; anything else came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class ClientLogFilter(logging.Filter):
    """Keeps the Kafka client's logs readable during an outage.

    aiokafka logs every failed connection and request, about 14,000 lines a second while a
    broker is down. Of its records (logger ``aiokafka.*``) at most one of each kind (logger
    and message template) passes per ``window_s``; the next one to pass says how many were
    held back. Errors the client retries by itself are warnings, not errors (the service
    says when the broker is unreachable and when it is back; an unexpected failure, with a
    traceback, stays an error), and a group coordinator that is not available yet (every
    first start of a group) is information.
    """

    def __init__(self, window_s: float = 10.0, clock: Any = None) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock or time.monotonic
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        _demote(record)
        if record.levelno < logging.getLogger(record.name).getEffectiveLevel():
            return False
        key = (record.name, record.msg)
        now = self._clock()
        since, held = self._seen.get(key, (None, 0))
        if since is not None and now - since < self.window_s:
            self._seen[key] = (since, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it held back in {self.window_s:g} s)"
        return True


_QUIET_ERRORS = ("CoordinatorNotAvailableError", "GroupCoordinatorNotAvailableError")


def _demote(record: logging.LogRecord) -> None:
    args = record.args if isinstance(record.args, tuple) else ()
    if any(type(a).__name__ in _QUIET_ERRORS for a in args):
        level = logging.INFO
    elif record.levelno >= logging.ERROR and not record.exc_info:
        # The client logs what it retries by itself as errors (a refused connection, a
        # failed metadata update, an expired heartbeat session); what it cannot get past
        # reaches the service as an exception, and the service logs that.
        level = logging.WARNING
    else:
        return
    record.levelno, record.levelname = level, logging.getLevelName(level)


def configure_logging(level: str, fmt: str, *, stream: Any = None) -> None:
    """Send ``streamrules`` (and aiokafka) logs to standard error in the chosen format.

    ``fmt`` is ``json``, ``text`` or ``auto`` (json unless the stream is a terminal).
    """
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_streamrules", False):
            root.removeHandler(old)
    handler._streamrules = True  # type: ignore[attr-defined]
    handler.addFilter(ClientLogFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiokafka is chatty at INFO (every join, every coordinator lookup).
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
