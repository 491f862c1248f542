"""The seeded stream generator: deterministic, valid, and rich enough for every rule."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streamrules.codec import DecodeError, Event, Record, decode
from streamrules.generate import DEFAULT_START, generate_events, write_jsonl

Item = tuple[str, bytes | None, bytes]


def stream(seed: int = 7, **kw: Any) -> list[Item]:
    kw.setdefault("days", 3)
    kw.setdefault("orders_per_hour", 120)
    return list(generate_events(seed, **kw))


@pytest.fixture(scope="module")
def three_days() -> list[Item]:
    return stream()


@pytest.fixture(scope="module")
def events(three_days: list[Item]) -> list[Event]:
    return [decode(Record(t, 0, i, k, v)) for i, (t, k, v) in enumerate(three_days)]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert stream(3, days=0.5) == stream(3, days=0.5)
    assert stream(3, days=0.5) != stream(4, days=0.5)


def test_every_record_is_valid_on_its_topic_with_its_key(
    three_days: list[Item], events: list[Event]
) -> None:
    for (topic, key, _), ev in zip(three_days, events, strict=True):
        field = "customer_id" if ev.type == "order_placed" else "service"
        assert key == ev.data[field].encode()
        assert topic == ("orders" if ev.type == "order_placed" else "incidents")


def test_span_and_near_event_time_order(events: list[Event]) -> None:
    start = int(DEFAULT_START.timestamp() * 1000)
    assert all(start <= e.ts_ms < start + 3 * 86_400_000 for e in events)
    watermark = events[0].ts_ms
    behind = []
    for e in events:
        behind.append(watermark - e.ts_ms)
        watermark = max(watermark, e.ts_ms)
    out_of_order = [b for b in behind if b > 0]
    late = [b for b in behind if b > 60_000]
    assert len(out_of_order) > 50  # a little disorder
    assert 1 <= len(late) <= len(events) // 500  # a few late events, not many
    assert sorted(behind)[int(len(behind) * 0.99)] <= 20_000


def test_orders_cover_every_discount_case(events: list[Event]) -> None:
    orders = [e for e in events if e.type == "order_placed"]
    assert len(orders) > 3 * 24 * 100
    weekdays = Counter(e.ts.strftime("%A") for e in orders)
    assert weekdays["Friday"] > 0 and len(weekdays) >= 3
    cases: Counter[tuple[bool, bool]] = Counter()
    for e in orders:
        count = sum(i["qty"] for i in e.data["items"])
        cases[(e.data["logged_in"], count > 2)] += 1
    assert len(cases) == 4 and min(cases.values()) > 50
    totals = [sum(i["qty"] * i["price"] for i in e.data["items"]) for e in orders]
    assert sum(t >= 500 for t in totals) > 20
    assert any(not e.data["ts"].endswith("Z") for e in orders)  # zones other than Z


def incidents(events: list[Event]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for e in events:
        iid = e.data.get("incident_id")
        if e.type == "incident_opened":
            assert isinstance(iid, str)  # required by the schema
            found.setdefault(
                iid, {"service": e.data["service"], "sev": e.data["severity"], "opened": e.ts_ms}
            )
        elif iid in found:
            found[iid].setdefault(e.type.removeprefix("incident_"), e.ts_ms)
    return found


def test_incidents_exercise_every_sre_rule(events: list[Event]) -> None:
    inc = incidents(events)
    assert len({i["service"] for i in inc.values()}) >= 4
    assert {i["sev"] for i in inc.values()} == {1, 2, 3, 4}
    # Escalations: severity 1/2 not handled before the deadline; and some handled in time.
    escalated, in_time = 0, 0
    for i in inc.values():
        if i["sev"] in (1, 2):
            deadline = i["opened"] + (5 if i["sev"] == 1 else 15) * 60_000
            handled = min(i.get("acknowledged", 2**62), i.get("resolved", 2**62))
            escalated += handled >= deadline
            in_time += handled < deadline
    assert escalated >= 2 and in_time >= 2
    # Storms: 3+ opened on one service within 30 minutes.
    by_service = defaultdict(list)
    for i in inc.values():
        by_service[i["service"]].append(i["opened"])
    storms = sum(
        1
        for times in by_service.values()
        for t in sorted(times)
        if len([u for u in times if t - 30 * 60_000 < u <= t]) == 3
    )
    assert storms >= 3
    # Downtime: hourly burn (> 51.84 s) often; the 2592 s budget spent on payments.
    downtimes: Counter[str] = Counter()
    burns = 0
    for i in inc.values():
        if i["sev"] in (1, 2) and "resolved" in i:
            d = (i["resolved"] - i["opened"]) / 1000
            downtimes[i["service"]] += d
            burns += d > 51.84
    assert burns >= 3
    assert downtimes["payments"] > 2592


def test_big_orders_during_payments_outages(events: list[Event]) -> None:
    inc = incidents(events)
    outages = [
        (i["opened"], i.get("resolved", 2**62))
        for i in inc.values()
        if i["service"] == "payments" and i["sev"] in (1, 2)
    ]
    held = [
        e
        for e in events
        if e.type == "order_placed"
        and sum(i["qty"] * i["price"] for i in e.data["items"]) >= 500
        and any(a <= e.ts_ms < b for a, b in outages)
    ]
    assert len(held) >= 3


def test_producer_noise(three_days: list[Item], events: list[Event]) -> None:
    values = Counter(v for _, _, v in three_days)
    assert sum(n - 1 for n in values.values()) >= 5  # duplicates: the same record again
    assert sum(n - 1 for v, n in values.items() if b'"incident_opened"' in v) >= 3
    opened = {e.data["incident_id"] for e in events if e.type == "incident_opened"}
    ghosts = [
        e
        for e in events
        if e.type != "incident_opened"
        and e.type != "order_placed"
        and e.data["incident_id"] not in opened
    ]
    assert {e.type for e in ghosts} == {"incident_acknowledged", "incident_resolved"}


def test_malformed_records_when_asked() -> None:
    items = stream(11, days=1, malformed_ratio=0.05)
    reasons: Counter[str] = Counter()
    for i, (topic, key, value) in enumerate(items):
        try:
            decode(Record(topic, 0, i, key, value))
        except DecodeError as err:
            reasons[err.reason] += 1
    assert set(reasons) == {"invalid_json", "unknown_type", "schema"}
    share = sum(reasons.values()) / len(items)
    assert 0.03 < share < 0.07
    assert all(b"\n" not in v for _, _, v in items)  # JSONL-safe
    assert stream(11, days=0.2) == stream(11, days=0.2, malformed_ratio=0.0)


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        generate_events(1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        generate_events(1, days=0)
    with pytest.raises(ValueError):
        generate_events(1, malformed_ratio=1.0)


def test_write_jsonl_and_the_cli_agree(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    args = dict(start=datetime(2026, 11, 27, tzinfo=UTC), days=0.25, orders_per_hour=200)
    n = write_jsonl(path, generate_events(5, **args))  # type: ignore[arg-type]
    lines = path.read_bytes().splitlines()
    assert n == len(lines) > 0
    assert lines == [v for _, _, v in generate_events(5, **args)]  # type: ignore[arg-type]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamrules.generate",
            "--seed",
            "5",
            "--days",
            "0.25",
            "--orders-per-hour",
            "200",
            "--start",
            "2026-11-27T00:00:00Z",
        ],
        capture_output=True,
        check=True,
    )
    assert cli.stdout == path.read_bytes()


def test_cli_bad_arguments_exit_2() -> None:
    cli = subprocess.run(
        [sys.executable, "-m", "streamrules.generate", "--start", "yesterday"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 2
    assert "RFC 3339" in cli.stderr and "Traceback" not in cli.stderr


def test_steady_orders_have_no_bursts_and_defaults_keep_them() -> None:
    def busiest_over_mean(items: list[Item]) -> float:
        per_5_min: Counter[int] = Counter()
        for _topic, _key, value in items:
            ev = decode(Record("", 0, 0, None, value))
            if ev.type == "order_placed":
                per_5_min[ev.ts_ms // 300_000] += 1
        counts = list(per_5_min.values())
        return max(counts) / (sum(counts) / len(counts))

    bursty = stream(days=2, orders_per_hour=3000)
    steady = stream(days=2, orders_per_hour=3000, order_bursts=False)
    assert busiest_over_mean(bursty) > 2.5  # a 4x burst
    assert busiest_over_mean(steady) < 1.5  # Poisson noise only
    kinds = Counter(orjson_type(v) for _t, _k, v in steady)
    assert kinds["incident_opened"] > 0 and kinds["incident_resolved"] > 0
    assert stream(days=2, orders_per_hour=3000, order_bursts=True) == bursty


def orjson_type(value: bytes) -> str:
    return str(decode(Record("", 0, 0, None, value)).type)


def test_a_stream_that_ends_in_the_future_is_warned_of(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streamrules.generate import main

    out = str(tmp_path / "e.jsonl")
    assert main(["--days", "0.01", "-o", out]) == 0  # the default start: long over
    assert capsys.readouterr().err == ""
    assert main(["--start", "3000-01-01T00:00:00Z", "--days", "0.01", "-o", out]) == 0
    err = capsys.readouterr().err
    assert "warning: the stream ends at 3000-01-01T00:14:24+00:00" in err
    assert "future_event" in err
