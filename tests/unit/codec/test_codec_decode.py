"""Decoding records into events: reasons, messages, times, topics."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streamrules.codec import (
    DecodeError,
    Decoder,
    Event,
    Record,
    decode,
    event_types,
    topic_for_type,
)

ORDER = {
    "type": "order_placed",
    "order_id": "o-1",
    "customer_id": "c-7",
    "logged_in": True,
    "items": [{"sku": "A-1", "qty": 2, "price": 12.5}, {"sku": "B-2", "qty": 1, "price": 3}],
    "ts": "2026-11-27T10:00:00Z",
}
OPENED = {
    "type": "incident_opened",
    "incident_id": "i-1",
    "service": "payments",
    "severity": 1,
    "ts": "2026-11-27T10:00:00Z",
}


def rec(value: object, topic: str = "orders", offset: int = 3) -> Record:
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return Record(topic, 1, offset, None, raw)


def reject(value: object, topic: str = "orders") -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(rec(value, topic))
    return info.value


def with_(base: dict[str, object], **changes: object) -> dict[str, object]:
    out = dict(base)
    out.update(changes)
    return out


def test_valid_order_decodes_with_utc_time_and_millis() -> None:
    r = rec(ORDER)
    event = decode(r)
    assert isinstance(event, Event)
    assert event.type == "order_placed"
    assert event.ts == datetime(2026, 11, 27, 10, tzinfo=UTC)
    assert event.ts_ms == 1795773600000
    assert event.data == ORDER
    assert event.record is r


def test_every_input_type_decodes_on_its_topic() -> None:
    assert event_types() == (
        "incident_acknowledged",
        "incident_opened",
        "incident_resolved",
        "order_placed",
    )
    for t in ("incident_acknowledged", "incident_resolved"):
        ev = decode(
            rec({"type": t, "incident_id": "i", "service": "s", "ts": ORDER["ts"]}, "incidents")
        )
        assert ev.type == t
    assert decode(rec(OPENED, "incidents")).data["severity"] == 1
    assert topic_for_type("order_placed") == "orders"
    assert topic_for_type("incident_resolved") == "incidents"


def test_unknown_extra_fields_are_kept_and_ignored() -> None:
    ev = decode(
        rec(with_(ORDER, channel="web", items=[{"sku": "x", "qty": 1, "price": 0, "note": "gift"}]))
    )
    assert ev.data["channel"] == "web"


@pytest.mark.parametrize(
    ("text", "iso_utc", "ms"),
    [
        ("2026-11-27T10:00:00Z", "2026-11-27T10:00:00+00:00", 1795773600000),
        ("2026-11-27t10:00:00z", "2026-11-27T10:00:00+00:00", 1795773600000),
        ("2026-11-27T12:00:00+02:00", "2026-11-27T10:00:00+00:00", 1795773600000),
        ("2026-11-27T05:30:00-04:30", "2026-11-27T10:00:00+00:00", 1795773600000),
        ("2026-11-27T10:00:00-00:00", "2026-11-27T10:00:00+00:00", 1795773600000),
        ("2026-11-27T10:00:00.5Z", "2026-11-27T10:00:00.500000+00:00", 1795773600500),
        ("2026-11-27T10:00:00.123456789Z", "2026-11-27T10:00:00.123456+00:00", 1795773600123),
        ("2026-11-27T00:30:00+01:00", "2026-11-26T23:30:00+00:00", 1795735800000),
        ("1969-12-31T23:59:59.9995Z", "1969-12-31T23:59:59.999500+00:00", -1),
    ],
)
def test_rfc3339_times_normalise_to_utc(text: str, iso_utc: str, ms: int) -> None:
    ev = decode(rec(with_(ORDER, ts=text)))
    assert ev.ts.isoformat() == iso_utc
    assert ev.ts.tzinfo is UTC
    assert ev.ts_ms == ms


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27T10:00:00",  # no zone
        "2026-11-27 10:00:00Z",  # not RFC 3339's T
        "2026-11-27",
        "2026-11-27T10:00Z",
        "2026-02-30T10:00:00Z",  # impossible date
        "2026-11-27T24:00:00Z",
        "2026-11-27T10:60:00Z",
        "2026-11-27T10:00:60Z",  # leap seconds are not representable
        "0000-01-01T00:00:00Z",
        "2026-11-27T10:00:00+24:00",
        "2026-11-27T10:00:00+05:60",
        "2026-11-27T10:00:00Z\n",
        "2026-11-27T10:00:00.Z",
        "1795773600000",
        "",
    ],
)
def test_bad_times_are_schema_errors_naming_ts(text: str) -> None:
    err = reject(with_(ORDER, ts=text))
    assert err.reason == "schema"
    assert err.message.startswith("ts: ")


def test_numeric_ts_is_a_schema_error() -> None:
    err = reject(with_(ORDER, ts=1795773600000))
    assert (err.reason, err.message) == ("schema", "ts: must be a string (got 1795773600000)")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            with_(
                ORDER,
                items=[{"sku": "a", "qty": 1, "price": 1}, {"sku": "b", "qty": 0, "price": 1}],
            ),
            "items[1].qty: must be >= 1 (got 0)",
        ),
        (
            with_(ORDER, items=[{"sku": "a", "qty": 1.5, "price": 1}]),
            "items[0].qty: must be an integer (got 1.5)",
        ),
        (
            with_(ORDER, items=[{"sku": "a", "qty": True, "price": 1}]),
            "items[0].qty: must be an integer (got true)",
        ),
        (
            with_(ORDER, items=[{"sku": "a", "qty": 1, "price": -0.01}]),
            "items[0].price: must be >= 0 (got -0.01)",
        ),
        (
            with_(ORDER, items=[{"sku": "a", "qty": 1, "price": "9.99"}]),
            'items[0].price: must be a number (got "9.99")',
        ),
        (with_(ORDER, items=[{"sku": "a", "qty": 1}]), "items[0].price: missing"),
        (with_(ORDER, items=["a"]), 'items[0]: must be an object (got "a")'),
        (with_(ORDER, items={}), "items: must be an array (got {})"),
        (with_(ORDER, logged_in="yes"), 'logged_in: must be true or false (got "yes")'),
        (with_(ORDER, order_id=""), "order_id: must not be empty"),
        (with_(ORDER, customer_id=7), "customer_id: must be a string (got 7)"),
        ({k: v for k, v in ORDER.items() if k != "customer_id"}, "customer_id: missing"),
        ({k: v for k, v in ORDER.items() if k != "ts"}, "ts: missing"),
    ],
)
def test_schema_errors_name_the_field(value: dict[str, object], message: str) -> None:
    err = reject(value)
    assert (err.reason, err.message) == ("schema", message)
    assert str(err) == f"schema: {message}"


def test_severity_bounds() -> None:
    for sev in (1, 2, 3, 4):
        assert decode(rec(with_(OPENED, severity=sev), "incidents")).data["severity"] == sev
    for bad, message in (
        (0, "severity: must be >= 1 (got 0)"),
        (5, "severity: must be <= 4 (got 5)"),
        ("1", 'severity: must be an integer (got "1")'),
    ):
        err = reject(with_(OPENED, severity=bad), "incidents")
        assert (err.reason, err.message) == ("schema", message)


def test_integral_float_qty_is_an_integer_as_in_json_schema() -> None:
    ev = decode(rec(with_(ORDER, items=[{"sku": "a", "qty": 2.0, "price": 1}])))
    assert ev.data["items"][0]["qty"] == 2


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        (b"", "not JSON: empty record"),
        (b"{", "not JSON"),
        (b'{"type": "order_placed",}', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": NaN}', "not JSON"),
        (b"[1, 2]", "not a JSON object but an array"),
        (b'"order_placed"', "not a JSON object but a string"),
        (b"null", "not a JSON object but null"),
        (b"42", "not a JSON object but a number"),
    ],
)
def test_invalid_json(raw: bytes, start: str) -> None:
    err = reject(raw)
    assert err.reason == "invalid_json"
    assert err.message.startswith(start)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"order_id": "o"}, "type: missing"),
        (with_(ORDER, type="order_cancelled"), 'type: "order_cancelled" is not one of'),
        (with_(ORDER, type=None), "type: null is not one of"),
        (with_(ORDER, type=["order_placed"]), 'type: ["order_placed"] is not one of'),
    ],
)
def test_unknown_type(value: dict[str, object], message: str) -> None:
    err = reject(value)
    assert err.reason == "unknown_type"
    assert err.message.startswith(message)


def test_wrong_topic_for_type_is_a_schema_error() -> None:
    err = reject(ORDER, "incidents")
    assert err.reason == "schema"
    assert err.message == "type: order_placed belongs on topic 'orders', not 'incidents'"
    assert reject(OPENED, "orders").reason == "schema"
    # A topic that is not an input topic (replay, tests) is not checked.
    assert decode(rec(ORDER, "")).type == "order_placed"


def test_renamed_topics() -> None:
    decoder = Decoder({"orders": "t1-orders", "incidents": "t1-incidents"})
    assert decoder.topic_for("order_placed") == "t1-orders"
    assert decoder.decode(rec(ORDER, "t1-orders")).type == "order_placed"
    with pytest.raises(DecodeError) as info:
        decoder.decode(rec(ORDER, "t1-incidents"))
    assert info.value.reason == "schema"


def test_errors_carry_the_records_position() -> None:
    err = reject(b"nope", "orders")
    assert (err.topic, err.partition, err.offset) == ("orders", 1, 3)


def test_long_values_are_cut_in_messages() -> None:
    err = reject(with_(ORDER, customer_id=["x" * 500]))
    assert err.reason == "schema"
    assert len(err.message) < 100
