"""Bad input and bad rules (issue 16): no record poisons the stream, no number overflows,
nothing is silently changed or lost. Through the real CLI (in-process, ``cli.main``) or
the test driver; the service's cases are in tests/integration/test_service_bad_input.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamrules import cli
from streamrules.codec import Record
from streamrules.config import load_settings
from streamrules.errors import ConfigError
from streamrules.facts import Incident, Order
from streamrules.testing import RulesTestDriver
from tests.oracle.events import acked, opened, order, resolved

ROOT = Path(__file__).resolve().parents[2]
T0 = "2026-11-26T10:00:00Z"  # a Thursday


def line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event) + b"\n"


def big_order(oid: str, ts: str, qty: int = 1, price: float = 600.0) -> dict[str, Any]:
    return order(oid, ts, items=[(qty, price)])


def replay(
    capsys: pytest.CaptureFixture[bytes], *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    """``streamrules replay ARGS`` in this process: exit status, decisions, stderr."""
    code = cli.main(["replay", *args])
    out, err = capsys.readouterr()
    return code, [orjson.loads(x) for x in out.splitlines() if x.strip()], err.decode()


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("STREAMRULES_"):
            monkeypatch.delenv(var)


pytestmark = pytest.mark.usefixtures("no_env")


# -- 1. one wrong clock ---------------------------------------------------------------------


def test_replay_is_history_unless_the_future_check_is_asked_for(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        line(order("o-1", T0))
        + line(order("o-2", "3000-01-01T00:00:00Z"))  # one producer's wrong clock
        + line(order("o-3", "2026-11-26T10:00:05Z"))
    )
    # A file is history: the check is off, and the wrong clock poisons what follows.
    code, decisions, err = replay(capsysbinary, str(path))
    assert code == 0 and [d["payload"]["order_id"] for d in decisions] == ["o-1", "o-2"]
    assert "line 3: late_event" in err

    # With the service's check (--now reproduces a service run at that wall clock): the
    # future event is a dead letter that changes nothing, the stream goes on.
    for args in (
        ["--now", "2026-11-26T10:30:00Z"],
        ["--max-future-ms", "3600000", "--now", "2026-11-26T10:30:00Z"],
    ):
        code, decisions, err = replay(capsysbinary, *args, str(path))
        assert code == 0 and [d["payload"]["order_id"] for d in decisions] == ["o-1", "o-3"]
        assert "line 2: future_event: ts 3000-01-01T00:00:00Z is more than max_future_ms" in err
        assert "late_event" not in err and "watermark 2026-11-26T10:00:05Z" in err
    # The environment counts (the wall clock of now is also decades before 3000) ...
    monkeypatch.setenv("STREAMRULES_MAX_FUTURE_MS", "3600000")
    code, decisions, err = replay(capsysbinary, str(path))
    assert "line 2: future_event" in err and len(decisions) == 2
    # ... and 0 turns the check off, --now or not.
    code, decisions, err = replay(capsysbinary, "--max-future-ms", "0", "--now", T0, str(path))
    assert "future_event" not in err and "line 3: late_event" in err


# -- 2. numbers -----------------------------------------------------------------------------


def test_numbers_outside_i_json_are_schema_dead_letters(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    outage = opened("i-1", T0, service="payments", severity=1)
    cases = [
        big_order("o-inf", "2026-11-26T10:00:01Z", qty=10, price=1e308),
        big_order("o-63", "2026-11-26T10:00:02Z", qty=2**63 - 1),
        big_order("o-int", "2026-11-26T10:00:03Z", price=2**60),  # not exactly a double
    ]
    huge = line(big_order("o-big", "2026-11-26T10:00:04Z")).replace(b"600.0", b"1e400")
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        line(outage)
        + b"".join(line(c) for c in cases)
        + huge
        + line(big_order("o-ok", "2026-11-26T10:00:05Z"))
    )
    code, decisions, err = replay(capsysbinary, str(path))
    assert code == 0
    assert [ln.split(": ")[:2] for ln in err.splitlines() if ln.startswith("line")] == [
        [f"line {n}", "schema"] for n in (2, 3, 4, 5)
    ]
    assert "the order's total (sum of qty * price) is not a finite number" in err
    assert "items[0].qty: must be <= 9007199254740991" in err
    assert "too large for a double" in err
    holds = [d for d in decisions if d["rule"] == "payments_hold"]
    assert [h["payload"]["total"] for h in holds] == [600.0]
    assert "rule_error" not in err


NAN_RULE = """
from streamrules.facts import Order
from streamrules.rete import Production, V

@Production(V("o") << Order(), name="ratio")
def ratio(o, ctx):
    ctx.emit(o["customer_id"], {"ratio": o["total"] / o["total"] if o["total"] else float("nan")})
"""


def test_a_payload_json_cannot_hold_is_a_rule_error_and_the_event_stays(tmp_path: Path) -> None:
    rules = tmp_path / "nan_rule.py"
    rules.write_text(NAN_RULE)
    d = RulesTestDriver(["streamrules.packs.discounts", str(rules)])
    d.send(order("o-1", T0, items=[(1, 0.0)]))  # total 0: the rule emits NaN
    (dead,) = d.dead_letters
    assert dead.reason == "rule_error"
    assert "production='ratio'" in dead.message and "payload.ratio (nan)" in dead.message
    assert [x.rule for x in d.decisions] == ["discount"]  # the other rule's decision stands
    assert [f["order_id"] for f in d.facts(Order)] == ["o-1"]  # the event's fact stays
    d.send(order("o-2", "2026-11-26T10:00:01Z", items=[(1, 5.0)]))
    assert [x.payload.get("ratio") for x in d.decisions_of("ratio")] == [1.0]


# -- 3. incident identity -------------------------------------------------------------------


def test_an_incident_is_its_service_and_its_id() -> None:
    d = RulesTestDriver()
    d.send(opened("i-1", T0, service="payments", severity=1))
    d.send(opened("i-1", "2026-11-26T10:00:01Z", service="search", severity=4))
    assert sorted(f["service"] for f in d.facts(Incident)) == ["payments", "search"]
    assert d.stats()["duplicates"] == 0
    # A resolution and an acknowledgement of search's i-1 leave payments' i-1 alone: it
    # still holds big orders, is still escalated, and no downtime is charged to it.
    d.send(acked("i-1", "2026-11-26T10:00:02Z", service="search"))
    d.send(resolved("i-1", "2026-11-26T10:00:03Z", service="search"))
    assert [f["service"] for f in d.facts(Incident)] == ["payments"]
    d.send(big_order("o-1", "2026-11-26T10:00:04Z"))
    assert [x.payload["order_id"] for x in d.decisions_of("payments_hold")] == ["o-1"]
    d.send(acked("i-1", "2026-11-26T10:00:05Z", service="checkout"))  # no such incident
    assert d.stats()["unknown_incidents"] == 1
    d.advance_to("2026-11-26T10:05:00Z")
    (esc,) = d.payloads("incident_escalation")
    assert esc["service"] == "payments"
    d.send(resolved("i-1", "2026-11-26T10:10:00Z", service="payments"))
    burn = d.payloads("error_budget_burn")
    assert [(b["service"], b["downtime_s"]) for b in burn] == [("payments", 600)]
    assert d.facts(Incident) == []


# -- 4. an output that is the input ---------------------------------------------------------


def test_replay_refuses_an_output_that_is_its_input(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.jsonl"
    content = line(order("o-1", T0)) + b"not json\n"
    path.write_bytes(content)
    link = tmp_path / "link.jsonl"
    link.symlink_to(path)
    for inp, dead in ((path, path), (link, path), (path, link)):
        code, decisions, err = replay(capsysbinary, str(inp), "--dead-letters", str(dead))
        assert code == 2 and decisions == []
        assert f"--dead-letters {dead} is the input {inp}: not written" in err
        assert path.read_bytes() == content
    with open(path, "a", encoding="utf-8") as same:  # `streamrules replay f >> f`
        monkeypatch.setattr(sys, "stdout", same)
        code = cli.main(["replay", str(path)])
    assert code == 2 and "standard output is the input" in capsysbinary.readouterr().err.decode()
    assert path.read_bytes() == content


# -- 5. decision ids of the facts users' rules make -----------------------------------------

SET_RULE = """
from streamrules.facts import Order
from streamrules.rete import Fact, Production, V

class Basket(Fact):
    pass

class Odd(Fact):
    pass

@Production(V("o") << Order(), name="basket", salience=1)
def basket(o, ctx):
    tags = frozenset({"alpha", "beta", "gamma", "delta", o["order_id"]})
    ctx.insert(Basket(tags=tags, by={"x": {1, 2, 3}}, when=(1, "a")))

@Production(V("b") << Basket(), name="tagged")
def tagged(b, ctx):
    ctx.emit("k", {"n": len(b["tags"])})

@Production(V("o") << Order(customer_id="c-odd"), name="odd")
def odd(o, ctx):
    ctx.insert(Odd(thing=object()))

@Production(V("x") << Odd(), name="odd_out")
def odd_out(x, ctx):
    ctx.emit("k", {"odd": True})
"""


def test_decision_ids_of_user_facts_are_the_same_in_every_process(tmp_path: Path) -> None:
    rules = tmp_path / "set_rule.py"
    rules.write_text(SET_RULE)
    events = line(order("o-1", T0)) + line(order("o-2", T0, customer_id="c-odd"))
    outs = []
    for seed in ("1", "2"):  # string hashes, and so set order, differ between the two
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMRULES_")}
        env["PYTHONHASHSEED"] = seed
        done = subprocess.run(
            [sys.executable, "-m", "streamrules", "replay", "--rules", str(rules), "-"],
            input=events,
            capture_output=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        outs.append((done.stdout, done.stderr.decode()))
    assert outs[0][0] == outs[1][0]
    tagged = [orjson.loads(x) for x in outs[0][0].splitlines()]
    assert [t["rule"] for t in tagged] == ["tagged", "tagged"]
    assert all(len(t["facts"][0]["id"]) == 16 for t in tagged)
    # A fact with no canonical encoding is refused, with the rule and the fact named.
    err = outs[0][1]
    assert "line 2: rule_error:" in err and "production='odd_out'" in err
    assert "fact Odd cannot be given a deterministic id" in err


# -- 8. rule_error said once ----------------------------------------------------------------

FAILING_RULE = """
from streamrules.facts import Order
from streamrules.rete import Production, V

@Production(V("o") << Order(), name="broken")
def broken(o, ctx):
    raise ValueError("no discount table for " + o["order_id"])
"""


def test_a_rule_error_is_printed_once(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    rules = tmp_path / "failing.py"
    rules.write_text(FAILING_RULE)
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(order("o-1", T0)))
    code, decisions, err = replay(
        capsysbinary, "--rules", "streamrules.packs.discounts", "--rules", str(rules), str(path)
    )
    assert code == 0 and [d["rule"] for d in decisions] == ["discount"]
    assert err.count("no discount table for o-1") == 1
    assert "line 1: rule_error: action raised ValueError" in err


# -- 7. a byte order mark, 6. an oversized record ----------------------------------------------


def test_a_utf8_bom_is_skipped(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(order("o-1", T0)) + b"\xef\xbb\xbf{}\n")
    code, decisions, err = replay(capsysbinary, str(path))
    assert code == 0 and [d["payload"]["order_id"] for d in decisions] == ["o-1"]
    dead = [ln for ln in err.splitlines() if ln.startswith("line ")]
    assert len(dead) == 1 and dead[0].startswith("line 2: invalid_json")  # only at the start


def test_an_oversized_line_is_a_dead_letter_kept_whole(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "events.jsonl"
    long_value = b'{"type": "order_placed", "pad": "' + "é".encode() * 40_000 + b'"}'
    path.write_bytes(
        line(order("o-1", T0)) + long_value + b"\r\n" + line(order("o-2", "2026-11-26T10:00:01Z"))
    )
    dead = tmp_path / "dead.jsonl"
    limit = ["--max-record-bytes", "1000"]
    code, decisions, err = replay(capsysbinary, *limit, str(path), "--dead-letters", str(dead))
    assert code == 0 and [d["payload"]["order_id"] for d in decisions] == ["o-1", "o-2"]
    (entry,) = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert entry["line"] == 2 and entry["reason"] == "schema"
    assert entry["message"].startswith("record value is larger than max_record_bytes (1000")
    assert entry["value"].encode() == long_value  # the whole line, its line end left out
    code, decisions, err = replay(capsysbinary, *limit, str(path))
    assert len(decisions) == 2 and "line 2: schema: record value is larger" in err
    assert "lines" in err and "3 lines" in err


# -- 9. the smaller ones --------------------------------------------------------------------


def test_rule_files_that_exit_or_are_directories(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    code, _, err = replay(capsysbinary, "--rules", str(exits), "-")
    assert code == 2 and "it called sys.exit(3) while it was loaded" in err
    code, _, err = replay(capsysbinary, "--rules", f"{tmp_path}/", "-")
    assert code == 2 and "a directory; give its .py files" in err


def test_a_bad_argument_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--stop-when-idle", "abc"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "streamrules run: error: argument --stop-when-idle: invalid float value: 'abc' "
        "(see streamrules run --help)"
    ]


def test_settings_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"orders_topic: 'bad topic!' is not a Kafka topic"):
        load_settings({"orders_topic": "bad topic!"}, environ={})
    with pytest.raises(ConfigError, match=r"dlq_topic: '\.\.' is not a Kafka topic"):
        load_settings({"dlq_topic": ".."}, environ={})
    toml = tmp_path / "c.toml"
    toml.write_text('rules = "x"\n')
    with pytest.raises(ConfigError, match="rules: must be an array of strings"):
        load_settings({"config": str(toml)}, environ={})
    # A flag overrides a bad environment value: it is not read, nor reported.
    s = load_settings({"idle_ms": "5"}, environ={"STREAMRULES_IDLE_MS": "soon"})
    assert s.idle_ms == 5
    with pytest.raises(ConfigError, match="STREAMRULES_IDLE_MS"):
        load_settings({}, environ={"STREAMRULES_IDLE_MS": "soon"})


def test_the_metrics_server_starts_after_the_rules_are_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import streamrules.httpserver

    def never(*args: object) -> None:
        raise AssertionError("the metrics server started before the rules were checked")

    monkeypatch.setattr(streamrules.httpserver, "StatusServer", never)
    code = cli.main(
        ["run", "--rules", "no.such.rules", "--metrics-port", "9", "--bootstrap-servers", "x:1"]
    )
    assert code == 2 and "rules 'no.such.rules': no such module" in capsys.readouterr().err


def test_the_driver_at_the_end_of_time_and_with_a_tombstone() -> None:
    d = RulesTestDriver()
    d.send(opened("i-1", "9999-12-31T23:00:00Z", severity=1))
    d.advance_to("9999-12-31T23:59:59.999Z")
    with pytest.raises(ValueError, match=r"beyond 9999-12-31T23:59:59\.999Z"):
        d.advance_by(1)
    d.send(Record("incidents", 0, 7, b"search", None))  # type: ignore[arg-type]
    (dead,) = d.dead_letters
    assert (dead.reason, dead.message) == ("invalid_json", "no value (a tombstone): not an event")


LOOP_RULE = """
from streamrules.facts import Order
from streamrules.rete import Fact, Production, V

class Counter(Fact):
    id_field = "name"

@Production(V("o") << Order(), name="start", salience=-1)
def start(o, ctx):
    ctx.insert(Counter(name=o["order_id"], n=0))

@Production(V("c") << Counter(n=V("n")), name="again")
def again(c, n, ctx):
    ctx.modify(c, n=n + 1)  # re-activates itself: forever
"""


def test_a_rule_that_refires_forever_is_stopped(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    rules = tmp_path / "loop.py"
    rules.write_text(LOOP_RULE)
    path = tmp_path / "events.jsonl"
    path.write_bytes(line(order("o-1", T0)) + line(order("o-2", "2026-11-26T10:00:01Z")))
    code, decisions, err = replay(
        capsysbinary,
        *("--rules", "streamrules.packs.discounts", "--rules", str(rules)),
        *("--max-firings-per-event", "500", str(path)),
    )
    assert code == 0 and [d["payload"]["order_id"] for d in decisions] == ["o-1", "o-2"]
    assert "line 1: rule_error: more than max_firings_per_event (500) firings" in err
    assert "line 2: rule_error" in err  # each event stopped, the next one processed
    assert "facts live 4 (orders 2" in err


def test_replays_help_names_the_settings_with_their_units(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["replay", "--help"])
    text = capsys.readouterr().out
    for flag in ("--allowed-lateness-ms", "--max-future-ms", "--max-record-bytes", "--now"):
        assert flag in text
    assert "--allowed-lateness " not in text  # the old name (seconds) is gone from the help
