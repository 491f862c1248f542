"""The JSON Schemas in topics/schemas: valid, consistent with the contract, the codec and
the examples of the documentation (the events page of the guide, and the README's decision)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import orjson
import pytest

from streamrules.codec import Record, decode, event_types, topic_for_type
from streamrules.topics import SCHEMAS_DIR

ROOT = Path(__file__).resolve().parents[3]
FILES = sorted(SCHEMAS_DIR.glob("*.json"))


def load(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


def test_schema_dir_is_the_repositorys() -> None:
    assert SCHEMAS_DIR == ROOT / "topics" / "schemas"
    assert {p.stem for p in FILES} == {*event_types(), "decision", "dead_letter_headers"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_schema_is_valid_and_its_examples_validate(path: Path) -> None:
    schema = load(path)
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    examples = schema["examples"]
    assert isinstance(examples, list) and examples
    for example in examples:
        validator.validate(example)


@pytest.mark.parametrize("event_type", event_types())
def test_event_examples_decode_on_their_topic(event_type: str) -> None:
    schema = load(SCHEMAS_DIR / f"{event_type}.json")
    assert schema["x-topic"] == topic_for_type(event_type)
    for example in schema["examples"]:  # type: ignore[attr-defined]
        key = example[schema["x-key"]].encode()
        ev = decode(Record(topic_for_type(event_type), 0, 0, key, orjson.dumps(example)))
        assert ev.type == event_type


# CONTRACT.md section 1, verbatim ("..." times filled in).
CONTRACT_EXAMPLES: list[dict[str, object]] = [
    {
        "type": "order_placed",
        "order_id": "o-1",
        "customer_id": "c-7",
        "logged_in": True,
        "items": [{"sku": "A-1", "qty": 2, "price": 12.5}],
        "ts": "2026-11-27T10:00:00Z",
    },
    {
        "type": "incident_opened",
        "incident_id": "i-1",
        "service": "payments",
        "severity": 1,
        "ts": "2026-11-27T10:00:00Z",
    },
    {
        "type": "incident_acknowledged",
        "incident_id": "i-1",
        "service": "payments",
        "ts": "2026-11-27T10:00:00Z",
    },
    {
        "type": "incident_resolved",
        "incident_id": "i-1",
        "service": "payments",
        "ts": "2026-11-27T10:00:00Z",
    },
]


def test_contract_section1_examples_are_valid() -> None:
    assert {e["type"] for e in CONTRACT_EXAMPLES} == set(event_types())
    for example in CONTRACT_EXAMPLES:
        jsonschema.Draft7Validator(load(SCHEMAS_DIR / f"{example['type']}.json")).validate(example)
        decode(Record("", 0, 0, None, orjson.dumps(example)))


# The guide's page on events and decisions, and the README's part that shows a decision.
EVENTS_PAGE = "events-and-replay.md"
OVERVIEW = "01-overview.md"


def readme_examples(page: str = EVENTS_PAGE) -> list[dict[str, object]]:
    text = (ROOT / "docs" / "readme" / page).read_text()
    found = []
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        for line in block.strip().splitlines():
            found.append(json.loads(line))
    return found


def test_readme_fragment_examples_validate() -> None:
    examples = readme_examples()
    assert len(examples) >= 6
    seen = set()
    for example in examples:
        name = str(example["type"]) if "type" in example else "decision"
        seen.add(name)
        jsonschema.Draft7Validator(load(SCHEMAS_DIR / f"{name}.json")).validate(example)
    assert seen >= {*event_types(), "decision"}


def test_readme_overview_decision_validates() -> None:
    (example,) = readme_examples(OVERVIEW)
    jsonschema.Draft7Validator(load(SCHEMAS_DIR / "decision.json")).validate(example)


@pytest.mark.parametrize("page", [EVENTS_PAGE, OVERVIEW])
def test_readme_decision_example_has_its_real_id(page: str) -> None:
    from streamrules.codec import Decision, parse_rfc3339

    (example,) = [e for e in readme_examples(page) if "decision_id" in e]
    payload = example["payload"]
    facts = [(f["type"], f["id"]) for f in example["facts"]]  # type: ignore[attr-defined]
    ms = parse_rfc3339(str(example["event_time"]))[1]
    made = Decision.create(str(example["rule"]), str(example["key"]), ms, payload, facts)  # type: ignore[arg-type]
    assert made.to_dict() == example
