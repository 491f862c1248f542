"""The demo's default start: a Thursday, never after now, and recent enough for retention."""

from __future__ import annotations

import datetime

from hypothesis import given
from hypothesis import strategies as st

from streamrules.commands.demo import latest_thursday


@given(st.datetimes(timezones=st.timezones()))
def test_latest_thursday(now: datetime.datetime) -> None:
    start = latest_thursday(now)
    assert start.weekday() == 3
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert start <= now
    assert now - start < datetime.timedelta(days=7)
