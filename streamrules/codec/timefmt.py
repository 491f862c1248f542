"""Codec stage, times: strict RFC 3339 parsing of event times and formatting of decision times.

``datetime.fromisoformat`` accepts far more than RFC 3339 (no zone, dates alone, week
dates, ``+05:60``), and a time without a zone must be a ``schema`` error, so the grammar
is checked first with one anchored regular expression; ``fromisoformat`` (C code) then
does the calendar checks and the arithmetic.

The decoder's path is ``parse_event_time``: the schemas' ``ts`` grammar checked and the
time parsed in one step, with the text up to the minute of ``Z`` times cached (a stream's
times move forward, so most events fall in a minute already seen).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "EVENT_TIME_PATTERN",
    "MAX_EVENT_TIME_MS",
    "format_ms",
    "parse_checked",
    "parse_event_time",
    "parse_rfc3339",
]

# ASCII digits only, as the schemas' pattern (Python's \d would take any Unicode digit).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# The ``ts`` pattern of the event schemas (topics/schemas), which ``parse_event_time``
# enforces: the codec leaves a schema's ts pattern out of its fast check only when it is
# exactly this text (any other pattern stays in the check, so an edit can never let a bad
# time through). ECMA 262's "$" is the very end of the text: Python's "\Z".
EVENT_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_EVENT_TIME = re.compile(EVENT_TIME_PATTERN[:-1] + r"\Z")  # used with match(): "^" is the start
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 9999-12-31T23:59:59.999Z: the last time RFC 3339 (four-digit years) can write.
MAX_EVENT_TIME_MS = 253_402_300_799_999
_EPOCH_ORDINAL = _EPOCH.toordinal()
_DATES: dict[int, str] = {}  # epoch day -> YYYY-MM-DD
_MINUTES: dict[int, str] = {}  # epoch minute -> YYYY-MM-DDTHH:MM:
_SECS_Z = [f"{s:02d}Z" for s in range(60)]
_SECS_DOT = [f"{s:02d}." for s in range(60)]
_MILLIS_Z = [f"{ms:03d}Z" for ms in range(1000)]
# parse_event_time's cache: "YYYY-MM-DDTHH:MM:" of a Z time -> (epoch ms, UTC datetime) of
# that minute; cleared when full, so it stays bounded whatever the stream's times.
_Z_MINUTES: dict[str, tuple[int, datetime]] = {}
_MAX_Z_MINUTES = 4096
# The text after the minute of a cached time, in two pieces: the seconds ("00".."59") and
# the ending, "Z" or exactly three fraction digits and "Z" (other fractions, a lower-case
# "z" and offsets take the uncached path), each as (milliseconds, timedelta).
_SECONDS = {f"{s:02d}": (s * 1000, timedelta(seconds=s)) for s in range(60)}
_Z_ENDINGS = {"Z": (0, timedelta(0))} | {
    f".{ms:03d}Z": (ms, timedelta(milliseconds=ms)) for ms in range(1000)
}


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


def parse_event_time(text: str) -> tuple[datetime, int] | None:
    """``parse_checked(text)`` when ``text`` matches ``EVENT_TIME_PATTERN`` and is a valid
    time, else ``None`` (the decoder then asks the schema validator and ``parse_checked``
    for the error).

    A hit in the minute cache needs no grammar test: the cached 17 characters matched the
    pattern when they were stored, and the seconds and the ending are looked up in tables
    holding only valid pieces.
    """
    minute = _Z_MINUTES.get(text[:17])
    if minute is not None:
        second = _SECONDS.get(text[17:19])
        ending = _Z_ENDINGS.get(text[19:])
        if second is not None and ending is not None:
            return minute[1] + second[1] + ending[1], minute[0] + second[0] + ending[0]
    return _parse_uncached(text)


def _parse_uncached(text: str) -> tuple[datetime, int] | None:
    """``parse_event_time`` without the cache; remembers the minute of a Z time."""
    if _EVENT_TIME.match(text) is None:
        return None
    try:
        dt, ms = parse_checked(text)
    except ValueError:
        return None
    second = _SECONDS.get(text[17:19])
    ending = _Z_ENDINGS.get(text[19:])
    if second is not None and ending is not None:  # a Z time: the text's minute is UTC's
        if len(_Z_MINUTES) >= _MAX_Z_MINUTES:
            _Z_MINUTES.clear()
        _Z_MINUTES[text[:17]] = (ms - second[0] - ending[0], dt - second[1] - ending[1])
    return dt, ms


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
        d = _EPOCH + timedelta(days=day)  # (not %Y: it drops the zeros of years < 1000)
        date = _DATES[day] = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
    hours, minutes = divmod(rest, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:"
