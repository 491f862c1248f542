"""The demo's default start, and `generate --start latest-thursday` (the compose stack's):
a Thursday, recent enough for retention; the latter's stream is over by now."""

from __future__ import annotations

import datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrules.codec import parse_rfc3339
from streamrules.generate import latest_thursday, main, recent_start


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
