"""Service logging: JSON lines (one object per record) or plain text on standard error.

Called once by a command at start; library modules only use ``logging.getLogger``. JSON
fields: ``time`` (wall clock, for operators), ``level``, ``logger``, ``message`` and any
``extra={...}`` values given to the log call.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = ["JsonFormatter", "configure_logging"]

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
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiokafka is chatty at INFO (every join, every coordinator lookup).
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
