"""``parse_event_time`` (the decoder's time path, with its minute cache) against the uncached
definition: the schemas' ``ts`` pattern as fastjsonschema applies it, then ``parse_checked``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrules.codec import timefmt
from streamrules.codec.schemas import event_schemas
from streamrules.codec.timefmt import EVENT_TIME_PATTERN, parse_checked, parse_event_time

_TS_SCHEMA = event_schemas()["order_placed"].schema["properties"]["ts"]
_TS_VALID = fastjsonschema.compile(_TS_SCHEMA, use_formats=False)


def expected(text: str) -> tuple[datetime, int] | None:
    """What the decoder did before the cache: the schema's pattern, then parse_checked."""
    try:
        _TS_VALID(text)
    except fastjsonschema.JsonSchemaValueException:
        return None
    try:
        return parse_checked(text)
    except ValueError:
        return None


def assert_same(text: str) -> None:
    got = parse_event_time(text)
    want = expected(text)
    assert got == want, text
    if got is not None and want is not None:
        assert got[0].tzinfo is UTC and want[0].tzinfo is UTC
        assert type(got[1]) is int


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    timefmt._Z_MINUTES.clear()
    yield
    timefmt._Z_MINUTES.clear()


def test_every_input_schema_has_the_pattern_parse_event_time_enforces() -> None:
    # Otherwise the decoder keeps the schema's pattern in its fast check (still sound,
    # but a second grammar test per event): update EVENT_TIME_PATTERN and the parser.
    for schema in event_schemas().values():
        assert schema.schema["properties"]["ts"]["pattern"] == EVENT_TIME_PATTERN


EDGE_TEXTS = [
    "2026-11-27T10:00:00Z",
    "2026-11-27T10:00:00.000Z",
    "2026-11-27T10:00:59.999Z",
    "2026-11-27T10:00:00z",
    "2026-11-27t10:00:00.250Z",
    "2026-11-27t10:00:00.250z",
    "2026-11-27T10:00:00.5Z",
    "2026-11-27T10:00:00.25Z",
    "2026-11-27T10:00:00.1234Z",
    "2026-11-27T10:00:00.123456789Z",
    "2026-11-27T10:00:00.999999999Z",
    "2026-11-27T12:00:00.250+02:00",
    "2026-11-27T05:30:00-04:30",
    "2026-11-27T10:00:00-00:00",
    "2026-11-27T10:00:00+00:00",
    "2026-11-27T10:00:00+23:59",
    "2026-11-27T10:00:00-23:59",
    "1969-12-31T23:59:59.999Z",
    "1970-01-01T00:00:00.000Z",
    "1969-12-31T23:59:59.9995Z",
    "0001-01-01T00:00:00.000Z",
    "0001-01-01T00:00:00+00:01",  # before year 1 in UTC: impossible
    "0001-01-01T00:00:00-00:01",
    "9999-12-31T23:59:59.999Z",
    "9999-12-31T23:59:59-00:01",  # after year 9999 in UTC: impossible
    "2024-02-29T12:00:00.000Z",
    "2026-02-29T12:00:00.000Z",  # not a leap year
    "2026-02-30T10:00:00Z",
    "2026-11-27T24:00:00Z",
    "2026-11-27T10:60:00Z",
    "2026-11-27T10:00:60Z",
    "2026-11-27T10:00:60.000Z",
    "2026-11-27T10:00:99.000Z",
    "0000-01-01T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-27T10:00:00+24:00",
    "2026-11-27T10:00:00+05:60",
    "2026-11-27T10:00:00",
    "2026-11-27 10:00:00Z",
    "2026-11-27T10:00Z",
    "2026-11-27T10:00:00.Z",
    "2026-11-27T10:00:00.000",
    "2026-11-27T10:00:00.000ZZ",
    "2026-11-27T10:00:00.000Z ",
    "2026-11-27T10:00:00Z\n",
    "2026-11-27T10:00:00.000+0200",
    "2026-11-27T10:00:00,000Z",
    "\uff12026-11-27T10:00:00Z",  # a full-width digit
    "2026-11-27T10:00:0\uff10Z",
    "2026-11-27T10:00:00.00\uff10Z",
    "2026-11-27T10:00:00.000\u0660Z",  # an Arabic-Indic digit
    "2026-11-27T10:00:",
    "2026-11-27T10:00:0",
    "",
    "Z",
]


def test_edge_texts_twice_each_and_in_every_order() -> None:
    for text in EDGE_TEXTS:
        assert_same(text)
        assert_same(text)  # the second time from the cache, if it was cached
    rng = random.Random(7)
    for _ in range(20):
        order = EDGE_TEXTS[:]
        rng.shuffle(order)
        timefmt._Z_MINUTES.clear()
        for text in order:
            assert_same(text)


def test_a_cached_minute_serves_no_other_zone_or_ending() -> None:
    assert_same("2026-11-26T01:00:00.000Z")  # caches "2026-11-26T01:00:"
    assert "2026-11-26T01:00:" in timefmt._Z_MINUTES
    for text in [
        "2026-11-26T01:00:30.500+01:00",
        "2026-11-26T01:00:30.500-01:00",
        "2026-11-26T01:00:30.500z",
        "2026-11-26T01:00:30.5Z",
        "2026-11-26T01:00:30.500000Z",
        "2026-11-26T01:00:30.500",
        "2026-11-26T01:00:60.500Z",
        "2026-11-26T01:00:3x.500Z",
        "2026-11-26T01:00:30.500Z",
    ]:
        assert_same(text)
    got = parse_event_time("2026-11-26T01:00:30.500+01:00")
    assert got is not None and got[0] == datetime(2026, 11, 26, 0, 0, 30, 500000, tzinfo=UTC)


def test_a_stream_in_time_order_in_mixed_zones_and_forms() -> None:
    rng = random.Random(11)
    t = datetime(2026, 11, 26, 23, 58, tzinfo=UTC)
    for _ in range(6000):
        t += timedelta(milliseconds=rng.choice([0, 1, 7, 130, 999, 1000, 4567, 61_000]))
        assert_same(render(t, rng))


def render(instant: datetime, rng: random.Random) -> str:
    """``instant`` as RFC 3339 text, mostly the common form, sometimes another."""
    minutes = rng.choice([0] * 8 + [60, -270, 1439, -1439, 330])
    local = instant.astimezone(timezone(timedelta(minutes=minutes)))
    digits = rng.choice([3] * 8 + [0, 1, 2, 6, 9])
    frac = (f".{local.microsecond:06d}" + "".join(rng.choices("0123456789", k=3)))[: digits + 1]
    if not digits:
        frac = ""
    if minutes == 0 and rng.random() < 0.9:
        zone = rng.choice("Z" * 9 + "z")
    else:
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    sep = rng.choice("T" * 9 + "t")
    return f"{local:%Y-%m-%d}{sep}{local:%H:%M:%S}{frac}{zone}"


def test_the_cache_stays_bounded_and_exact_when_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timefmt, "_MAX_Z_MINUTES", 5)
    rng = random.Random(3)
    t = datetime(2030, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        t += timedelta(seconds=rng.choice([1, 13, 59, 60, 3600]))
        assert_same(f"{t:%Y-%m-%dT%H:%M:%S}.{rng.randrange(1000):03d}Z")
        assert len(timefmt._Z_MINUTES) <= 5
    timefmt._Z_MINUTES.clear()
    for day in range(10_000):  # at the real size too
        parse_event_time(f"{datetime(2000, 1, 1) + timedelta(minutes=day):%Y-%m-%dT%H:%M}:00Z")
    assert len(timefmt._Z_MINUTES) <= timefmt._MAX_Z_MINUTES


pieces = st.sampled_from(
    ["2026-11-27", "1969-12-31", "0001-01-01", "9999-12-31", "2024-02-29", "2026-02-29"]
)


@st.composite
def near_texts(draw: st.DrawFn) -> str:
    """Texts near the grammar: valid pieces, some replaced or cut."""
    date = draw(pieces)
    sep = draw(st.sampled_from("TtT "))
    hh = draw(st.sampled_from(["00", "10", "23", "24"]))
    mm = draw(st.sampled_from(["00", "59", "60"]))
    ss = draw(st.sampled_from(["00", "30", "59", "60", "99", "0"]))
    frac = draw(st.sampled_from(["", ".000", ".999", ".5", ".12", ".1234567", ".", ".00a"]))
    zone = draw(
        st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "-23:59", "+24:00", "", "ZZ"])
    )
    text = f"{date}{sep}{hh}:{mm}:{ss}{frac}{zone}"
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=2)) + text[cut + draw(st.integers(0, 2)) :]
    return text


@settings(max_examples=600, deadline=None)
@given(st.lists(near_texts(), min_size=1, max_size=8))
def test_near_texts_against_the_uncached_definition(texts: list[str]) -> None:
    # The cache is not emptied between examples: its state is arbitrary here.
    for text in texts:
        assert_same(text)


def test_parse_rfc3339_takes_ascii_digits_only() -> None:
    from streamrules.codec.timefmt import parse_rfc3339

    with pytest.raises(ValueError, match="must be an RFC 3339 date-time"):
        parse_rfc3339("\uff12026-11-27T10:00:00Z")  # a full-width digit two


def test_format_ms_writes_four_digit_years() -> None:
    from streamrules.codec.timefmt import format_ms

    _, ms = parse_checked("0999-01-01T00:00:00Z")
    assert format_ms(ms) == "0999-01-01T00:00:00Z"
    _, ms = parse_checked("0001-02-03T04:05:06.007Z")
    assert format_ms(ms) == "0001-02-03T04:05:06.007Z"
