"""The per-event constructors of the codec's frozen dataclasses (``positional_maker``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrules.codec import Decision, Event, Record
from streamrules.codec.events import positional_maker

_make_record = positional_maker(Record)
_make_event = positional_maker(Event)
_make_decision = positional_maker(Decision)


@given(
    topic=st.text(max_size=5),
    partition=st.integers(-1, 9),
    offset=st.integers(-1, 10**9),
    key=st.none() | st.binary(max_size=4),
    value=st.binary(max_size=20),
)
def test_made_records_equal_constructed_ones(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes
) -> None:
    made = _make_record(topic, partition, offset, key, value, ())
    built = Record(topic, partition, offset, key, value)
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)


def test_made_events_and_decisions_equal_constructed_ones() -> None:
    ts = datetime(2026, 11, 27, 10, tzinfo=UTC)
    record = Record("orders", 0, 1, None, b"{}")
    data = {"type": "order_placed"}
    assert _make_event("order_placed", ts, 1, data, record) == Event(
        "order_placed", ts, 1, data, record
    )
    facts = ({"type": "Order", "id": "o-1"},)
    made = _make_decision("id", "discount", "c-1", "2026-11-27T10:00:00Z", {"a": 1}, facts)
    built = Decision("id", "discount", "c-1", "2026-11-27T10:00:00Z", {"a": 1}, facts)
    assert made == built
    assert made.to_json() == built.to_json()


def test_made_objects_stay_frozen_and_need_every_field() -> None:
    made = _make_record("t", 0, 0, None, b"", ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.topic = "u"  # type: ignore[misc]
    with pytest.raises(TypeError):
        _make_record("t", 0, 0, None, b"")  # no default is filled in: all positional
