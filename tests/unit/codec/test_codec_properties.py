"""Property tests of the codec: round trips, mutations, the fast check against jsonschema."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastjsonschema
import jsonschema
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamrules.codec import (
    DEAD_LETTER_REASONS,
    DecodeError,
    Event,
    Record,
    decode,
    event_types,
    format_ms,
    parse_rfc3339,
    topic_for_type,
)
from streamrules.codec.schemas import event_schemas
from streamrules.codec.timefmt import parse_checked, parse_event_time
from streamrules.topics import SCHEMAS_DIR

settings.register_profile(
    "codec", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
CODEC = settings.get_profile("codec")

VALIDATORS = {
    t: jsonschema.Draft7Validator(json.loads((SCHEMAS_DIR / f"{t}.json").read_text()))
    for t in event_types()
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ids = st.text(min_size=1, max_size=8)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, datetime]:
    """An RFC 3339 rendering of an instant, in any zone and spelling."""
    instant = draw(instants)
    minutes = draw(offsets)
    local = instant.astimezone(timezone(timedelta(minutes=minutes)))
    digits = draw(st.sampled_from([0, 3, 6]))
    frac = f".{local.microsecond:06d}"[: digits + 1] if digits else ""
    if minutes == 0 and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z"]))
    else:
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    sep = draw(st.sampled_from(["T", "t"]))
    text = f"{local:%Y-%m-%d}{sep}{local:%H:%M:%S}{frac}{zone}"
    truncated = instant.replace(microsecond=int(frac[1:].ljust(6, "0")) if frac else 0)
    return text, truncated


prices = st.one_of(st.integers(0, 10_000), st.floats(0, 10_000, allow_nan=False))
items = st.fixed_dictionaries(
    {"sku": ids, "qty": st.integers(1, 50), "price": prices},
    optional={"note": st.text(max_size=5)},
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(event_types()))
    ts, _ = draw(rfc3339())
    if kind == "order_placed":
        body: dict[str, Any] = {
            "order_id": draw(ids),
            "customer_id": draw(ids),
            "logged_in": draw(st.booleans()),
            "items": draw(st.lists(items, max_size=4)),
        }
    else:
        body = {"incident_id": draw(ids), "service": draw(ids)}
        if kind == "incident_opened":
            body["severity"] = draw(st.integers(1, 4))
    extra = draw(
        st.dictionaries(
            st.sampled_from(["x", "channel", "v"]), st.integers(-(2**40), 2**40), max_size=2
        )
    )
    return {**extra, "type": kind, **body, "ts": ts}


@CODEC
@given(rfc3339())
def test_time_parsing_matches_datetime(pair: tuple[str, datetime]) -> None:
    text, instant = pair
    parsed, ms = parse_rfc3339(text)
    assert parsed == instant
    assert ms == (instant - EPOCH) // timedelta(milliseconds=1)


@CODEC
@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_format_ms_matches_datetime(ms: int) -> None:
    instant = EPOCH + timedelta(milliseconds=ms)
    expected = f"{instant:%Y-%m-%dT%H:%M:%S}" + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")
    assert format_ms(ms) == expected
    assert parse_rfc3339(expected) == (instant, ms)


@CODEC
@given(events())
def test_round_trip(event: dict[str, Any]) -> None:
    raw = orjson.dumps(event)
    ev = decode(Record(topic_for_type(event["type"]), 0, 7, None, raw))
    assert ev.data == event
    assert ev.type == event["type"]
    assert orjson.loads(orjson.dumps(ev.data)) == event
    assert ev.ts == parse_rfc3339(event["ts"])[0]
    assert event_schemas()[ev.type].check(event)  # the fast path takes valid events


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-2, 2, allow_nan=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _first_item_is_an_object(event: dict[str, Any]) -> bool:
    items = event.get("items")
    return isinstance(items, list) and bool(items) and isinstance(items[0], dict)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with fields dropped, replaced by random JSON, or nested items broken."""
    event = draw(events())
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from(sorted(event)))
        action = draw(st.sampled_from(["drop", "replace", "item"]))
        if action == "drop":
            del event[field]
        elif action == "item" and _first_item_is_an_object(event):
            item = dict(event["items"][0])
            item[draw(st.sampled_from(["sku", "qty", "price"]))] = draw(json_values)
            event["items"] = [item, *event["items"][1:]]
        else:
            event[field] = draw(json_values)
    return event


@settings(CODEC, max_examples=200)
@given(mutated())
def test_mutations_are_accepted_equal_or_rejected_with_a_known_reason(
    event: dict[str, Any],
) -> None:
    raw = orjson.dumps(event)
    try:
        ev = decode(Record("", 0, 0, None, raw))
    except DecodeError as err:
        assert err.reason in DEAD_LETTER_REASONS
        assert err.message
        if err.reason == "schema" and not err.message.startswith("ts:"):
            assert not VALIDATORS[event["type"]].is_valid(event)
        return
    assert ev.data == event
    assert VALIDATORS[ev.type].is_valid(event)


@settings(CODEC, max_examples=200)
@given(mutated())
def test_fast_check_is_sound_against_jsonschema(event: dict[str, Any]) -> None:
    kind = event.get("type")
    for name, schema in event_schemas().items():
        if schema.check(event):
            assert VALIDATORS[name].is_valid(event), (name, kind)


@settings(CODEC, max_examples=300)
@given(mutated(), st.sampled_from(event_types()))
def test_the_decoders_fast_path_is_sound_against_jsonschema(
    event: dict[str, Any], kind: str
) -> None:
    event["type"] = kind  # the decoder picks the schema by the event's type
    schema = event_schemas()[kind]
    if schema.decoder_check(event) and parse_event_time(event["ts"]) is not None:
        assert VALIDATORS[kind].is_valid(event)
        assert schema.check(event)


@CODEC
@given(st.binary(max_size=60))
def test_random_bytes_never_raise_anything_but_decode_error(raw: bytes) -> None:
    try:
        decode(Record("orders", 0, 0, None, raw))
    except DecodeError as err:
        assert err.reason in ("invalid_json", "unknown_type", "schema")


def test_fast_check_gives_up_on_keywords_it_does_not_know() -> None:
    from streamrules.codec.fastcheck import compile_check

    assert compile_check({"type": "object", "required": ["a"]})({"a": 1})
    assert not compile_check({"type": "object", "required": ["a"]})({"b": 1})
    assert not compile_check({"type": "object", "additionalProperties": False})({})
    assert not compile_check({"type": "string", "minimum": 1})("x")  # nonsense: slow path
    assert not compile_check({"enum": [1, 2]})(1)
    check = compile_check({"type": "string", "pattern": "^a$"})
    assert check("a") and not check("a\n")  # ECMA "$" is the very end


def reference_decode(record: Record) -> Event:
    """The decoder before its fast path (one predicate, then the validator, the topic, the
    time): what ``decode`` must still do, record for record."""
    mod = importlib.import_module("streamrules.codec.decode")  # the module, not decode()
    try:
        obj = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        raise mod._error(record, "invalid_json", mod._json_problem(record.value, exc)) from None
    if type(obj) is not dict:
        raise mod._error(record, "invalid_json", f"not a JSON object but {mod._json_kind(obj)}")
    event_type: Any = obj.get("type")
    schemas = event_schemas()
    schema = schemas.get(event_type) if type(event_type) is str else None
    if schema is None:
        if "type" not in obj:
            raise mod._error(record, "unknown_type", "type: missing")
        known = ", ".join(sorted(schemas))
        raise mod._error(
            record, "unknown_type", f"type: {mod._show(event_type)} is not one of {known}"
        )
    if not schema.check(obj):
        try:
            schema.validate(obj)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise mod._error(record, "schema", mod._schema_problem(exc)) from None
    inputs = {s.topic for s in schemas.values()}
    if record.topic in inputs and record.topic != schema.topic:
        raise mod._error(
            record,
            "schema",
            f"type: {event_type} belongs on topic {schema.topic!r}, not {record.topic!r}",
        )
    try:
        ts, ts_ms = parse_checked(obj["ts"])
    except ValueError as exc:
        raise mod._error(record, "schema", f"ts: {exc} (got {mod._show(obj['ts'])})") from None
    return Event(event_type, ts, ts_ms, obj, record)


def outcome(decoder: Any, record: Record) -> tuple[Any, ...]:
    try:
        ev = decoder(record)
    except DecodeError as err:
        return ("error", err.reason, err.message, err.topic, err.partition, err.offset)
    assert ev.ts.tzinfo is UTC
    return ("event", ev.type, ev.ts, ev.ts_ms, ev.data, ev.record)


ts_texts = st.one_of(
    rfc3339().map(lambda pair: pair[0]),
    st.sampled_from(
        [
            "2026-02-30T10:00:00Z",
            "2026-11-27T10:00:60.000Z",
            "2026-11-27T10:00:00",
            "2026-11-27T10:00:00+24:00",
            "0001-01-01T00:00:00+01:00",
            "2026-11-27T10:00:00.5z",
            "yesterday",
        ]
    ),
    json_values,
)


@settings(CODEC, max_examples=400)
@given(
    st.one_of(events(), mutated()),
    ts_texts,
    st.booleans(),
    st.sampled_from(["", "orders", "incidents", "other"]),
)
def test_decode_does_what_the_decoder_without_fast_path_did(
    event: dict[str, Any], ts: Any, replace_ts: bool, topic: str
) -> None:
    if replace_ts:
        event["ts"] = ts
    record = Record(topic, 2, 5, None, orjson.dumps(event))
    assert outcome(decode, record) == outcome(reference_decode, record)
