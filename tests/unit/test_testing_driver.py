"""RulesTestDriver and the rules_driver fixture, and the README's worked example, run."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streamrules.errors import ConfigError
from streamrules.facts import Incident, Order
from streamrules.testing import RulesTestDriver, to_ms
from streamrules.testing.plugin import rules_driver  # noqa: F401  (the fixture)
from tests.oracle.events import opened, order

README = Path(__file__).resolve().parents[2] / "docs" / "readme" / "packs-and-testing.md"


def test_send_dicts_and_read_decisions() -> None:
    d = RulesTestDriver()
    step = d.send(order("o-1", "2026-11-26T10:00:00Z", logged_in=True))
    assert [x.rule for x in step.decisions] == ["discount"]
    assert d.read_decisions() == step.decisions
    assert d.read_decisions() == []
    d.send(order("o-2", "2026-11-26T10:01:00Z"))
    assert [x.payload["order_id"] for x in d.read_decisions()] == ["o-2"]
    assert len(d.decisions) == 2
    assert d.watermark == "2026-11-26T10:01:00Z"


def test_missing_ts_is_the_current_time_and_datetimes_are_accepted() -> None:
    d = RulesTestDriver(start="2026-11-26T09:00:00Z")
    event = order("o-1")
    del event["ts"]
    d.send(event)
    assert d.decisions[0].event_time == "2026-11-26T09:00:00Z"
    d.send({**order("o-2"), "ts": datetime(2026, 11, 26, 9, 30, tzinfo=UTC)})
    assert d.decisions[1].event_time == "2026-11-26T09:30:00Z"


def test_without_a_start_there_is_no_current_time() -> None:
    d = RulesTestDriver()
    with pytest.raises(ConfigError, match="no time yet"):
        d.advance_by(1000)


def test_bytes_and_malformed_events_become_dead_letters() -> None:
    d = RulesTestDriver()
    d.send(b"{oops", topic="orders")
    d.send({"type": "order_placed", "order_id": "o-1", "ts": "2026-11-26T10:00:00Z"})
    assert [x.reason for x in d.dead_letters] == ["invalid_json", "schema"]
    assert d.dead_letters[1].record.topic == "orders"
    assert d.dead_letters[1].record.key is None


def test_advance_and_inspect_working_memory() -> None:
    d = RulesTestDriver(["streamrules.packs.sre"])
    d.send(opened("i-1", "2026-11-26T10:00:00Z", service="payments", severity=1))
    d.send(order("o-1", "2026-11-26T10:00:00Z"))
    assert [f["incident_id"] for f in d.facts(Incident)] == ["i-1"]
    assert [f["order_id"] for f in d.facts("Order")] == ["o-1"]
    assert d.expiry_of(d.facts(Order)[0]) == "2026-11-26T11:00:00Z"
    assert d.advance_by(timedelta(minutes=5)).decisions[0].rule == "incident_escalation"
    d.advance_to("2026-11-26T11:00:00Z")
    assert d.facts(Order) == []
    assert {type(f).__name__ for f in d.facts()} >= {"Incident"}


def test_to_ms() -> None:
    assert to_ms("1970-01-01T00:00:01Z") == 1000
    assert to_ms(datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)) == 2000
    assert to_ms(5) == 5
    with pytest.raises(ValueError):
        to_ms(datetime(2026, 1, 1))


def test_the_fixture_is_a_factory(rules_driver: Callable[..., RulesTestDriver]) -> None:  # noqa: F811
    a = rules_driver()
    b = rules_driver(["streamrules.packs.discounts"], allowed_lateness_ms=0)
    assert isinstance(a, RulesTestDriver) and a is not b
    assert [p.name for p in b.pipeline.productions] == ["discount"]


def _blocks() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    return {b.splitlines()[0].lstrip("# ").strip(): b for b in blocks}


def test_the_readme_example_runs(
    rules_driver: Callable[..., RulesTestDriver],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = _blocks()
    assert set(blocks) == {"my_rules.py", "test_my_rules.py"}
    (tmp_path / "my_rules.py").write_text(blocks["my_rules.py"])
    test_file = tmp_path / "test_my_rules.py"
    test_file.write_text(blocks["test_my_rules.py"])
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("readme_test_my_rules", test_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        test(rules_driver)
