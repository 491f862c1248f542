"""``compile_check``'s options for the decoder (``given``, ``unchecked_patterns``) and the
decoder's checks (its fast path against jsonschema: test_codec_properties)."""

from __future__ import annotations

import copy
import json

from streamrules.codec.fastcheck import compile_check
from streamrules.codec.schemas import _decoder_check, event_schemas
from streamrules.codec.timefmt import EVENT_TIME_PATTERN, parse_event_time
from streamrules.topics import SCHEMAS_DIR

TIMED = {
    "type": "object",
    "required": ["kind", "ts"],
    "properties": {
        "kind": {"const": "a"},
        "ts": {"type": "string", "pattern": "^[0-9]+$"},
        "note": {"type": "string", "pattern": "^[0-9]+$"},
    },
}


def test_given_properties_and_object_are_not_tested_again() -> None:
    check = compile_check(TIMED, given={"kind": "a"})
    assert check({"ts": "1"})  # "kind" and "is a dict" are the caller's knowledge
    assert not check({"ts": "x"})
    assert not check({"kind": "a"})  # the rest is still tested
    assert not compile_check(TIMED)({"ts": "1"})


def test_a_given_value_that_does_not_fit_keeps_its_test() -> None:
    assert not compile_check(TIMED, given={"kind": "b"})({"kind": "b", "ts": "1"})


def test_an_unchecked_pattern_is_left_out_only_where_it_is_the_schemas() -> None:
    same = compile_check(TIMED, unchecked_patterns={"ts": "^[0-9]+$"})
    assert same({"kind": "a", "ts": "x"})
    assert not same({"kind": "a", "ts": 1})  # the type is still tested
    other = compile_check(TIMED, unchecked_patterns={"ts": "^[0-9]*$"})
    assert not other({"kind": "a", "ts": "x"})
    # "note" is not required: a caller testing it would find nothing when it is absent.
    optional = compile_check(TIMED, unchecked_patterns={"note": "^[0-9]+$"})
    assert not optional({"kind": "a", "ts": "1", "note": "x"})


def test_min_length_and_min_items_of_one() -> None:
    check = compile_check(
        {
            "type": "object",
            "required": ["s", "a"],
            "properties": {
                "s": {"type": "string", "minLength": 1},
                "a": {"type": "array", "minItems": 1, "items": {"type": "number"}},
            },
        }
    )
    assert check({"s": "x", "a": [1.5, 2]})
    assert not check({"s": "", "a": [1]})
    assert not check({"s": "x", "a": []})
    assert not check({"s": 0, "a": [1]})
    assert not check({"s": "x", "a": [True]})


def test_decoder_checks_leave_out_only_the_ts_pattern() -> None:
    for name, schema in event_schemas().items():
        event = copy.deepcopy(schema.schema["examples"][0])
        assert schema.check(event) and schema.decoder_check(event)
        event["ts"] = "yesterday"
        assert schema.decoder_check(event) and not schema.check(event), name
        event["ts"] = 1795773600000
        assert not schema.decoder_check(event)


def test_an_edited_ts_pattern_stays_in_the_decoders_check() -> None:
    schema = json.loads((SCHEMAS_DIR / "order_placed.json").read_text())
    schema["properties"]["ts"]["pattern"] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"
    check = _decoder_check(schema, "order_placed")
    event = copy.deepcopy(schema["examples"][0])
    assert check(event)
    event["ts"] = "2026-11-27T10:00:00.250Z"  # EVENT_TIME_PATTERN allows it, the edit not
    assert parse_event_time(event["ts"]) is not None
    assert not check(event)


def test_no_fast_path_for_a_ts_that_is_not_a_required_string() -> None:
    schema = json.loads((SCHEMAS_DIR / "order_placed.json").read_text())
    event = schema["examples"][0]
    schema["required"].remove("ts")
    assert not _decoder_check(schema, "order_placed")(event)
    schema = json.loads((SCHEMAS_DIR / "order_placed.json").read_text())
    del schema["properties"]["ts"]["type"]
    assert not _decoder_check(schema, "order_placed")(event)
    assert schema["properties"]["ts"]["pattern"] == EVENT_TIME_PATTERN


def test_number_bounds_compare_exactly_as_floats_or_ints() -> None:
    big = 2**60 + 1  # not a float: kept as an int
    check = compile_check(
        {
            "type": "object",
            "required": ["n", "m", "i"],
            "properties": {
                "n": {"type": "number", "minimum": 500},
                "m": {"type": "number", "exclusiveMaximum": big},
                "i": {"type": "integer", "minimum": 1},
            },
        }
    )
    assert check({"n": 500, "m": big - 1, "i": 1})
    assert check({"n": 500.0, "m": 2.0**60, "i": 1})
    assert not check({"n": 499.99, "m": 0, "i": 1})
    assert not check({"n": 499, "m": 0, "i": 1})
    assert not check({"n": 500, "m": big, "i": 1})
    assert check({"n": 10**30, "m": -(10**30), "i": 10**30})
