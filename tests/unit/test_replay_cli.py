"""``streamrules replay`` end to end, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from streamrules.codec import Record
from streamrules.generate import generate_events, write_jsonl
from streamrules.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
DECISION = jsonschema.Draft7Validator(
    json.loads((ROOT / "topics" / "schemas" / "decision.json").read_text())
)
ALL_RULES = {
    "discount",
    "incident_escalation",
    "incident_storm",
    "payments_hold",
    "error_budget_burn",
    "error_budget_exhausted",
}


def replay(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "streamrules", "replay", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )


def order(
    oid: str,
    ts: str,
    *,
    cust: str = "c-7",
    logged_in: bool = True,
    qty: int = 1,
    price: float = 10.0,
) -> dict[str, Any]:
    return {
        "type": "order_placed",
        "order_id": oid,
        "customer_id": cust,
        "logged_in": logged_in,
        "items": [{"sku": "A-1", "qty": qty, "price": price}],
        "ts": ts,
    }


def jsonl(*lines: dict[str, Any] | bytes) -> bytes:
    return b"".join((x if isinstance(x, bytes) else orjson.dumps(x)) + b"\n" for x in lines)


def decisions(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def test_one_order_one_discount_decision(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(jsonl(order("o-1", "2026-11-26T10:00:00+01:00", qty=3)))
    res = replay(str(path))
    assert res.returncode == 0, res.stderr
    (d,) = decisions(res.stdout)
    assert list(d) == ["decision_id", "rule", "key", "event_time", "payload", "facts"]
    assert d["rule"] == "discount" and d["key"] == "c-7"
    assert d["event_time"] == "2026-11-26T09:00:00Z"
    assert d["payload"] == {
        "order_id": "o-1",
        "customer_id": "c-7",
        "discount_pct": 30,
        "reasons": ["logged_in", "more_than_2_items"],
    }
    assert d["facts"] == [{"type": "Order", "id": "o-1"}]
    DECISION.validate(d)
    assert b"replay: " in res.stderr and b"decisions 1 (discount 1)" in res.stderr


def test_bad_lines_are_dead_letters_with_line_numbers_and_never_stop_it() -> None:
    data = jsonl(
        order("o-1", "2026-11-26T10:00:00Z"),  # line 1
        b"{not json",  # 2
        b"",  # 3: blank, skipped
        {"type": "order_cancelled", "ts": "2026-11-26T10:00:01Z"},  # 4
        order("o-2", "2026-11-26T10:00:02Z", qty=0),  # 5
        order("o-3", "2026-11-26T10:05:00Z"),  # 6
        order("o-4", "2026-11-26T10:03:00Z"),  # 7: 2 minutes behind: late
        order("o-5", "2026-11-26T10:04:30Z"),  # 8: 30 s behind: fine
        order("o-1", "2026-11-26T10:05:01Z"),  # 9: duplicate of a live order
    )
    res = replay("-", stdin=data)
    assert res.returncode == 0
    err = res.stderr.decode()
    assert "line 2: invalid_json: not JSON" in err
    assert 'line 4: unknown_type: type: "order_cancelled" is not one of' in err
    assert "line 5: schema: items[0].qty: must be >= 1 (got 0)" in err
    assert "line 7: late_event: " in err
    assert "Traceback" not in err
    got = [d["payload"]["order_id"] for d in decisions(res.stdout)]
    assert got == ["o-1", "o-3", "o-5"]
    assert "dead letters 4 (" in err
    for reason in ("invalid_json 1", "late_event 1", "schema 1", "unknown_type 1"):
        assert reason in err
    assert "1 duplicates" in err


def test_dead_letters_file(tmp_path: Path) -> None:
    inp, dead = tmp_path / "in.jsonl", tmp_path / "dead.jsonl"
    inp.write_bytes(jsonl(order("o-1", "2026-11-26T10:00:00Z"), b"\xff oops"))
    res = replay("--dead-letters", str(dead), str(inp))
    assert res.returncode == 0
    assert b"line 2" not in res.stderr
    (entry,) = [json.loads(x) for x in dead.read_text().splitlines()]
    assert entry["line"] == 2 and entry["reason"] == "invalid_json"
    assert entry["message"].startswith("not UTF-8")
    assert entry["value"].endswith(" oops")


def test_allowed_lateness_flag() -> None:
    data = jsonl(order("o-1", "2026-11-26T10:00:30Z"), order("o-2", "2026-11-26T10:00:00Z"))
    assert len(decisions(replay("-", stdin=data).stdout)) == 2
    res = replay("--allowed-lateness-ms", "10000", "-", stdin=data)
    assert len(decisions(res.stdout)) == 1
    assert b"line 2: late_event" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rules", "streamrules.packs.nope", "-"], "streamrules.packs.nope"),
        (["--rules", "/no/such/rules.py", "-"], "/no/such/rules.py"),
        (["/no/such/events.jsonl"], "cannot read /no/such/events.jsonl"),
        (["--dead-letters", "/no/such/dir/d.jsonl", "-"], "--dead-letters"),
        (["--allowed-lateness-ms", "-1", "-"], "allowed_lateness_ms: must be >= 0"),
        (["--allowed-lateness-ms", "soon", "-"], "allowed_lateness_ms: must be an integer"),
        (["--allowed-lateness", "10", "-"], "now --allowed-lateness-ms (milliseconds)"),
        (["--max-future-ms", "-1", "-"], "max_future_ms: must be >= 0"),
        (["--max-record-bytes", "0", "-"], "max_record_bytes: must be >= 1"),
        (["--now", "yesterday", "-"], "--now: not an RFC 3339 time"),
    ],
)
def test_start_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    res = replay(*args, stdin=b"")
    assert res.returncode == 2
    err = res.stderr.decode()
    assert message in err
    assert "Traceback" not in err
    assert message in err.strip().splitlines()[-1]
    # One line, or argparse's usage followed by its one-line error.
    assert len(err.strip().splitlines()) == 1 or err.startswith("usage:")
    assert res.stdout == b""


def test_rules_flag_selects_packs_and_files(tmp_path: Path) -> None:
    rules = tmp_path / "big.py"
    rules.write_text(
        "from streamrules.facts import Order\n"
        "from streamrules.rete import Production, V, Filter\n\n"
        "@Production(V('o') << Order(total=V('t')) & Filter(lambda t: t >= 100),"
        " name='big_order')\n"
        "def big_order(o, t, ctx):\n"
        "    ctx.emit(o['customer_id'], {'order_id': o['order_id'], 'total': t})\n"
    )
    data = jsonl(
        order("o-1", "2026-11-26T10:00:00Z", price=150),
        order("o-2", "2026-11-26T10:00:01Z", price=5),
    )
    res = replay("--rules", str(rules), "-", stdin=data)
    assert res.returncode == 0, res.stderr
    assert [d["rule"] for d in decisions(res.stdout)] == ["big_order"]
    res = replay("--rules", "streamrules.packs.discounts", "--rules", str(rules), "-", stdin=data)
    assert Counter(d["rule"] for d in decisions(res.stdout)) == {"discount": 2, "big_order": 1}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "events.jsonl"
    write_jsonl(path, generate_events(7, days=3, orders_per_hour=60, malformed_ratio=0.01))
    return path


def test_generated_stream_fires_every_rule_and_matches_the_pipeline(generated: Path) -> None:
    res = replay(str(generated))
    assert res.returncode == 0, res.stderr[-2000:]
    out = decisions(res.stdout)
    assert {d["rule"] for d in out} == ALL_RULES
    for d in out:
        DECISION.validate(d)
    assert len({d["decision_id"] for d in out}) == len(out)
    assert res.stdout == replay(str(generated)).stdout  # deterministic, ids included
    # The same as driving the pipeline directly with the lines as records.
    pipeline = Pipeline()
    direct: list[bytes] = []
    for i, line in enumerate(generated.read_bytes().splitlines()):
        step = pipeline.process(Record("", 0, i, None, line))
        direct.extend(d.to_json() for d in step.decisions)
    assert res.stdout.splitlines() == direct
    err = res.stderr.decode()
    for reason in ("invalid_json", "schema", "unknown_type", "late_event"):
        assert f"{reason} " in err.splitlines()[-1]


def test_output_to_a_closed_pipe_is_quiet(generated: Path) -> None:
    proc = subprocess.Popen(
        f"{sys.executable} -m streamrules replay {generated} | head -n 1",
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=300)
    assert len(out.splitlines()) == 1
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_readme_example_is_this_replay(generated: Path) -> None:
    """The README fragment shows a replay of the ``generated`` fixture's stream."""
    text = (ROOT / "docs" / "readme" / "events-and-replay.md").read_text()
    assert (
        "python -m streamrules.generate --days 3 --seed 7 --orders-per-hour 60 "
        "--malformed-ratio 0.01 > events.jsonl" in text
    )
    shown: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("$ "):
            current = shown.setdefault(line, [])
        elif line.startswith("```"):
            current = None
        elif current is not None:
            current.append(line)
    res = replay(str(generated))
    log = res.stderr.decode().splitlines()
    assert shown["$ head -n 3 replay.log"] == log[:3]
    assert shown["$ tail -n 4 replay.log"] == log[-4:]
    assert shown["$ head -n 1 decisions.jsonl"] == [res.stdout.decode().splitlines()[0]]


def test_feeding_in_chunks_is_one_replay() -> None:
    # The soak benchmark feeds the command's loop 1,000 lines at a time: line numbers (and
    # so dead letters) go on across calls, and the output is that of one feed.
    import io

    from streamrules.commands.replay import _Replay

    lines = [
        b'{"type":"order_placed","order_id":"o-1","customer_id":"c","logged_in":true,'
        b'"items":[{"sku":"A","qty":1,"price":1}],"ts":"2026-11-26T10:00:00Z"}\n',
        b"not json\n",
        b'{"type":"order_placed","order_id":"o-2","customer_id":"c","logged_in":false,'
        b'"items":[{"sku":"A","qty":3,"price":1}],"ts":"2026-11-26T10:00:01Z"}\n',
        b'{"type":"nope","ts":"2026-11-26T10:00:02Z"}\n',
    ]

    def run(chunks: list[list[bytes]]) -> tuple[bytes, bytes]:
        out, dead = io.BytesIO(), io.BytesIO()
        replay = _Replay(Pipeline(), out, dead)
        for chunk in chunks:
            replay.feed(chunk)
        return out.getvalue(), dead.getvalue()

    whole = run([lines])
    assert run([lines[:1], lines[1:3], lines[3:]]) == whole
    assert [orjson.loads(x)["line"] for x in whole[1].splitlines()] == [2, 4]


def test_a_terminal_sees_a_progress_bar_and_the_same_output(
    generated: Path, tmp_path: Path
) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    out = tmp_path / "decisions.jsonl"
    with open(out, "wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamrules", "replay", str(generated)],
            stdout=stdout,
            stderr=slave,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=300) == 0
    terminal = seen.decode(errors="replace")
    assert "replaying" in terminal  # the bar
    assert "lines" in terminal and "replay: " in terminal.splitlines()[-1]  # summary last
    assert "line " in terminal and "invalid_json" in terminal  # dead letters still shown
    plain = replay(str(generated))
    assert out.read_bytes() == plain.stdout
    assert b"replaying" not in plain.stderr  # not a terminal: no bar
