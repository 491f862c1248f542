"""Codec stage, times: strict RFC 3339 parsing of event times and formatting of decision times.

``datetime.fromisoformat`` accepts far more than RFC 3339 (no zone, dates alone, week
dates, ``+05:60``), and a time without a zone must be a ``schema`` error, so the grammar
is checked first with one anchored regular expression; ``fromisoformat`` (C code) then
does the calendar checks and the arithmetic.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["format_ms", "parse_checked", "parse_rfc3339"]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()
_DATES: dict[int, str] = {}  # epoch day -> YYYY-MM-DD
_MINUTES: dict[int, str] = {}  # epoch minute -> YYYY-MM-DDTHH:MM:
_SECS_Z = [f"{s:02d}Z" for s in range(60)]
_SECS_DOT = [f"{s:02d}." for s in range(60)]
_MILLIS_Z = [f"{ms:03d}Z" for ms in range(1000)]


def parse_rfc3339(text: str) -> tuple[datetime, int]:
    """Return ``(utc_datetime, epoch_ms)`` for an RFC 3339 date-time with a zone.

    Raises ``ValueError`` with a short reason for anything else (no zone, impossible
    date or time, offset out of range). Fractions beyond microseconds are truncated;
    ``epoch_ms`` rounds down.
    """
    if _RFC3339.fullmatch(text) is None:
        raise ValueError("must be an RFC 3339 date-time with a zone, e.g. 2026-11-27T10:00:00Z")
    return parse_checked(text)


def parse_checked(text: str) -> tuple[datetime, int]:
    """``parse_rfc3339`` for text already known to match the RFC 3339 grammar (the event
    schemas' ``ts`` pattern): the decoder's hot path, which has just checked it."""
    if text[-6] in "+-" and (text[-5:-3] > "23" or text[-2:] > "59"):
        raise ValueError(f"zone offset out of range ({text[-6:]})")
    try:
        # fromisoformat wants upper-case T and Z; RFC 3339 allows both cases.
        dt = datetime.fromisoformat(text if text.isupper() else text.upper())
        tz = dt.tzinfo
        if tz is not UTC:  # UTC: a Z time, the common case
            if tz is None:
                raise ValueError("no zone")
            dt = dt.astimezone(UTC) if dt.utcoffset() else dt.replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # Feb 30, hour 24, second 60, year 0
        raise ValueError(f"impossible date or time ({exc})") from None
    # Integer arithmetic: exact, and several times cheaper than timedelta division.
    days = dt.toordinal() - _EPOCH_ORDINAL
    seconds = ((days * 24 + dt.hour) * 60 + dt.minute) * 60 + dt.second
    return dt, seconds * 1000 + dt.microsecond // 1000


def format_ms(ts_ms: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC with ``Z``; milliseconds only when not zero."""
    # Called for every decision, and a stream's times move forward minute by minute: the
    # text up to the minute is cached (bounded), the seconds are formatted each time.
    minute, ms = divmod(ts_ms, 60_000)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) > 4096:
            _MINUTES.clear()
        prefix = _MINUTES[minute] = _minute_prefix(minute)
    secs, ms = divmod(ms, 1000)
    if ms:  # string pieces from tables: half the cost of formatting the numbers
        return prefix + _SECS_DOT[secs] + _MILLIS_Z[ms]
    return prefix + _SECS_Z[secs]


def _minute_prefix(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of an epoch minute."""
    day, rest = divmod(minute, 1440)
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) > 4096:
            _DATES.clear()
        date = _DATES[day] = f"{_EPOCH + timedelta(days=day):%Y-%m-%d}"
    hours, minutes = divmod(rest, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:"
