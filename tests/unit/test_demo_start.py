"""The demo's default start, and `generate --start latest-thursday` (the compose stack's):
a Thursday, recent enough for retention, its whole stream over by now (the service's
future check passes); a given start that ends in the future is refused by the demo."""

from __future__ import annotations

import datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrules.codec import DecodeError, Decoder, Record, parse_rfc3339
from streamrules.commands.demo import stream_start
from streamrules.config import DEFAULT_MAX_FUTURE_MS
from streamrules.errors import ConfigError
from streamrules.generate import (
    DEFAULT_START,
    generate_events,
    latest_thursday,
    main,
    recent_start,
)


@given(st.datetimes(timezones=st.timezones()))
def test_latest_thursday(now: datetime.datetime) -> None:
    start = latest_thursday(now)
    assert start.weekday() == 3
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert start <= now
    assert now - start < datetime.timedelta(days=7)


@given(st.datetimes(timezones=st.timezones()), st.floats(0.1, 30))
def test_recent_start_is_over_by_now_and_within_retention(
    now: datetime.datetime, days: float
) -> None:
    start = recent_start(now, days)
    assert start.weekday() == 3
    end = start + datetime.timedelta(days=days)
    assert end <= now
    assert now - end < datetime.timedelta(days=7)


def test_generate_latest_thursday_keyword(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    before = recent_start(datetime.datetime.now(datetime.UTC), 0.05)
    assert main(["--start", "latest-thursday", "--days", "0.05", "--seed", "3"]) == 0
    after = recent_start(datetime.datetime.now(datetime.UTC), 0.05)
    lines = capsysbinary.readouterr().out.splitlines()
    first = min(parse_rfc3339(orjson.loads(line)["ts"])[0] for line in lines)
    # The stream starts at that Thursday (either side of a midnight during the run).
    assert any(start <= first < start + datetime.timedelta(hours=1) for start in (before, after))


@given(
    st.datetimes(min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2100, 1, 1)),
    st.floats(min_value=0.01, max_value=60),
)
def test_the_default_stream_is_over_by_now(now: datetime.datetime, days: float) -> None:
    now = now.replace(tzinfo=datetime.UTC)
    start = stream_start(now, days, None, DEFAULT_MAX_FUTURE_MS)
    assert start.weekday() == 3
    assert start + datetime.timedelta(days=days) <= now
    assert now - start < datetime.timedelta(days=days + 7)


def test_the_demo_and_generator_streams_pass_the_services_future_check() -> None:
    # The service's default check against the wall clock of now: nothing is future_event.
    now = datetime.datetime.now(datetime.UTC)
    decoder = Decoder(max_future_ms=DEFAULT_MAX_FUTURE_MS)
    for start in (stream_start(now, 0.3, None, DEFAULT_MAX_FUTURE_MS), DEFAULT_START):
        reasons = set()
        for topic, _key, value in generate_events(3, start=start, days=0.3):
            try:
                decoder.decode(Record(topic, 0, 0, None, value))
            except DecodeError as exc:
                reasons.add(exc.reason)
        assert "future_event" not in reasons


def test_a_given_start_that_ends_in_the_future_is_refused() -> None:
    now = datetime.datetime(2026, 12, 4, 12, tzinfo=datetime.UTC)
    given = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    with pytest.raises(ConfigError, match="future_event"):
        stream_start(now, 3, given, DEFAULT_MAX_FUTURE_MS)
    assert stream_start(now, 3, given, 0) == given  # the check off: taken as given
    assert stream_start(now, 1, given, DEFAULT_MAX_FUTURE_MS) == given
