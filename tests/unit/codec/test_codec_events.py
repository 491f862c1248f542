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


def test_made_decisions_are_constructed_ones() -> None:
    # The maker fills a look-alike of the class and makes it one: the same object.
    payload = {"order_id": "o-1", "reasons": ["logged_in"], "x": 1.5}
    facts = ({"type": "Order", "id": "o-1"}, {"type": "Incident", "id": "\u00e9"})
    args = ("id", "discount", "c-\u00e9", "2026-11-27T10:00:00Z", payload, facts)
    made = _make_decision(*args)
    built = Decision(*args)
    assert type(made) is Decision
    assert made == built and repr(made) == repr(built)
    assert made.to_json() == built.to_json()
    assert dataclasses.astuple(made) == dataclasses.astuple(built)
    assert made.payload is payload and made.facts is facts
    assert not hasattr(made, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.rule = "other"  # type: ignore[misc]


def test_a_class_it_cannot_copy_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        positional_maker(NoSlots)
