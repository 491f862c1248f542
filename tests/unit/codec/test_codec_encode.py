"""Decisions and dead-letter headers: the contract's shapes, deterministic ids."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import pytest

from streamrules.codec import (
    DEAD_LETTER_REASONS,
    Decision,
    Record,
    dead_letter_headers,
    decision_id,
    format_ms,
)
from streamrules.codec.encode import decision_id_of
from streamrules.errors import RuleError

SCHEMAS = Path(__file__).resolve().parents[3] / "topics" / "schemas"
T = 1795773600000  # 2026-11-27T10:00:00Z


def schema(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / f"{name}.json").read_text()))


def discount() -> Decision:
    payload = {
        "order_id": "o-1",
        "customer_id": "c-7",
        "discount_pct": 20,
        "reasons": ["logged_in"],
    }
    return Decision.create("discount", "c-7", T, payload, [("Order", "o-1")])


def test_to_json_is_the_contract_object_in_order() -> None:
    d = discount()
    raw = d.to_json()
    obj = orjson.loads(raw)
    assert list(obj) == ["decision_id", "rule", "key", "event_time", "payload", "facts"]
    assert obj["event_time"] == "2026-11-27T10:00:00Z"
    assert obj["facts"] == [{"type": "Order", "id": "o-1"}]
    assert list(obj["payload"]) == ["order_id", "customer_id", "discount_pct", "reasons"]
    assert b"\n" not in raw
    schema("decision").validate(obj)
    assert Decision.from_json(raw) == Decision.from_json(Decision.from_json(raw).to_json())
    assert Decision.from_json(raw).to_dict() == d.to_dict()


def test_decision_schema_pins_bundled_payloads() -> None:
    bad = discount().to_dict()
    bad["payload"]["discount_pct"] = 25
    assert not schema("decision").is_valid(bad)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (T, "2026-11-27T10:00:00Z"),
        (T + 7, "2026-11-27T10:00:00.007Z"),
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_event_time_format(ms: int, text: str) -> None:
    assert format_ms(ms) == text


def test_decision_id_is_deterministic_and_shape() -> None:
    a = decision_id("r", "k", T, [("Order", "o-1")], {"x": 1, "y": [1, 2]})
    b = decision_id("r", "k", T, [("Order", "o-1")], {"y": (1, 2), "x": 1})
    assert a == b  # payload key order and tuple/list do not matter
    assert len(a) == 32
    int(a, 16)
    assert discount().decision_id == discount().decision_id


def test_decision_id_differs_for_any_different_input() -> None:
    base = ("r", "k", T, (("Order", "o-1"),), {"x": 1}, 0)
    ids = {decision_id(*base)}
    variants = [
        ("r2", "k", T, (("Order", "o-1"),), {"x": 1}, 0),
        ("r", "k2", T, (("Order", "o-1"),), {"x": 1}, 0),
        ("r", "k", T + 1, (("Order", "o-1"),), {"x": 1}, 0),
        ("r", "k", T, (("Order", "o-2"),), {"x": 1}, 0),
        ("r", "k", T, (("Incident", "o-1"),), {"x": 1}, 0),
        ("r", "k", T, (), {"x": 1}, 0),
        ("r", "k", T, (("Order", "o-1"),), {"x": 2}, 0),
        ("r", "k", T, (("Order", "o-1"),), {"x": 1}, 1),
        ("r", "k", T, (("Order", "o-1"),), {"x": 1}, 2),
    ]
    for v in variants:
        ids.add(decision_id(*v))
    assert len(ids) == len(variants) + 1


def test_non_json_payload_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="discount"):
        Decision.create("discount", "c", T, {"bad": object()})


def test_dead_letter_headers() -> None:
    record = Record("orders", 2, 41, b"c-7", b"{oops")
    headers = dead_letter_headers(record, "invalid_json", "not JSON:\n  line 1")
    assert headers == [
        ("source.topic", b"orders"),
        ("source.partition", b"2"),
        ("source.offset", b"41"),
        ("reason", b"invalid_json"),
        ("message", b"not JSON: line 1"),
    ]
    schema("dead_letter_headers").validate({k: v.decode() for k, v in headers})
    long = dict(dead_letter_headers(record, "schema", "x" * 5000))
    assert len(long["message"]) == 1000


def test_dead_letter_reasons_match_the_schema() -> None:
    doc = json.loads((SCHEMAS / "dead_letter_headers.json").read_text())
    assert tuple(doc["properties"]["reason"]["enum"]) == DEAD_LETTER_REASONS


def test_decision_id_of_pairs_is_the_same_id() -> None:
    # The pipeline hashes (type, id) tuples as they are; the public function unpacks them.
    payload = {"b": [1, 2.5, None], "a": {"z": True, "y": "\u00e9"}}
    facts = (("Order", "o-1"), ("Incident", "i-2"))
    for occurrence in (0, 1, 7):
        assert decision_id_of("r", "k", 1_764_237_600_123, facts, payload, occurrence) == (
            decision_id("r", "k", 1_764_237_600_123, list(facts), payload, occurrence)
        )
    assert decision_id_of("r", "k", 1, (), {}) == decision_id("r", "k", 1, [], {})
    with pytest.raises(RuleError):
        decision_id_of("r", "k", 1, (), {"x": object()})
