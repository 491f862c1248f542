"""Events to fact changes (assert / modify / retract, event facts) and the ``ctx`` of
rule actions (emit, insert with expiry, logical, timers), through a real pipeline."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from streamrules.facts import Incident, IncidentOpened, IncidentResolved, Order
from streamrules.testing import RulesTestDriver
from tests.oracle.events import acked, opened, order, resolved

SPY = textwrap.dedent(
    """
    from streamrules.facts import IncidentOpened, IncidentResolved, Order
    from streamrules.rete import Production, V

    SEEN = []

    @Production(V("e") << IncidentOpened())
    def saw_opening(e, ctx):
        SEEN.append(("opened", dict(e), ctx.now_ms))

    @Production(V("e") << IncidentResolved())
    def saw_resolution(e, ctx):
        SEEN.append(("resolved", dict(e), ctx.now_ms))
    """
)


def spy(tmp_path: Path) -> tuple[RulesTestDriver, list[tuple[str, dict[str, object], int]]]:
    path = tmp_path / "spy.py"
    path.write_text(SPY)
    driver = RulesTestDriver([str(path)])
    action = driver.pipeline.productions[0].__wrapped__
    assert action is not None
    return driver, action.__globals__["SEEN"]


def test_order_fact_fields() -> None:
    d = RulesTestDriver(["streamrules.packs.discounts"])
    d.send({**order("o-1", "2026-11-27T01:00:00+02:00", items=[(2, 1.5), (3, 2)]), "x": 1})
    (o,) = d.facts(Order)
    assert dict(o) == {
        "order_id": "o-1",
        "customer_id": "c-7",
        "logged_in": False,
        "item_count": 5,
        "total": 9.0,
        "ts_ms": d.pipeline.watermark_ms,
        "weekday": 3,  # Thursday 23:00 UTC
    }


def test_incident_is_asserted_modified_and_retracted(tmp_path: Path) -> None:
    d, seen = spy(tmp_path)
    d.send(opened("i-1", "2026-11-26T10:00:00Z", service="payments", severity=2))
    (inc,) = d.facts(Incident)
    assert dict(inc) == {
        "incident_id": "i-1",
        "service": "payments",
        "severity": 2,
        "opened_ms": inc["opened_ms"],
        "acknowledged": False,
        "acknowledged_ms": None,
    }
    assert d.expiry_of(inc) == "2026-12-03T10:00:00Z"  # 7 days
    # the event fact existed while its event was processed, and no longer
    assert [s[0] for s in seen] == ["opened"]
    assert d.facts(IncidentOpened) == []
    d.send(acked("i-1", "2026-11-26T10:01:00Z", service="payments"))
    (same,) = d.facts(Incident)
    assert same is inc and inc["acknowledged"] is True
    assert inc["acknowledged_ms"] == inc["opened_ms"] + 60_000
    d.send(resolved("i-1", "2026-11-26T10:02:30.500Z", service="payments"))
    assert d.facts(Incident) == [] and d.facts(IncidentResolved) == []
    kind, fact, now = seen[-1]
    assert kind == "resolved"
    assert fact["downtime_ms"] == 150_500 and fact["severity"] == 2
    assert now == fact["resolved_ms"]
    assert d.stats()["pending_expiries_and_timers"] == 0  # the 7-day expiry went with it


def test_resolution_before_opening_in_event_time_has_no_negative_downtime(tmp_path: Path) -> None:
    d, seen = spy(tmp_path)
    d.send(opened("i-1", "2026-11-26T10:00:30Z"))
    d.send(resolved("i-1", "2026-11-26T10:00:00Z"))  # 30 s late, within lateness
    assert seen[-1][1]["downtime_ms"] == 0


CTX = textwrap.dedent(
    """
    from streamrules.facts import Order
    from streamrules.rete import Fact, Production, V

    class Flag(Fact):
        pass

    class Ping(Fact):
        pass

    class Shadow(Fact):
        id_field = "of"

    @Production(V("o") << Order(order_id=V("id")))
    def on_order(o, id, ctx):
        ctx.insert(Flag(of=id), expires_at_ms=ctx.now_ms + 1000)
        ctx.insert(Shadow(of=id), logical=True)
        ctx.schedule(ctx.now_ms + 500, Ping(of=id))
        if id == "past":
            ctx.schedule(ctx.now_ms - 10_000, Ping(of="past-timer"))

    @Production(V("p") << Ping(of=V("id")))
    def pinged(p, id, ctx):
        ctx.emit("k", {"ping": id, "watermark": ctx.watermark_ms})
    """
)


def test_ctx_insert_with_expiry_logical_and_timers(tmp_path: Path) -> None:
    path = tmp_path / "ctxrules.py"
    path.write_text(CTX)
    d = RulesTestDriver([str(path)], start="2026-11-26T10:00:00Z")
    d.send(order("o-1", "2026-11-26T10:00:00Z"))
    names: Callable[[], list[str]] = lambda: sorted(type(f).__name__ for f in d.facts())  # noqa: E731
    assert names() == ["Flag", "Order", "Shadow"]
    step = d.advance_to("2026-11-26T10:00:00.500Z")
    (ping,) = step.decisions
    assert ping.payload["ping"] == "o-1" and ping.event_time == "2026-11-26T10:00:00.500Z"
    assert ping.facts == ({"type": "Ping", "id": ping.facts[0]["id"]},)
    assert names() == ["Flag", "Order", "Shadow"]  # the timer fact lived one agenda run
    d.advance_to("2026-11-26T10:00:01Z")
    assert names() == ["Order", "Shadow"]
    d.advance_to("2026-11-26T11:00:00Z")
    assert names() == []  # the logical Shadow went with the order's match


def test_a_timer_already_due_fires_in_the_same_step(tmp_path: Path) -> None:
    path = tmp_path / "ctxrules2.py"
    path.write_text(CTX)
    d = RulesTestDriver([str(path)])
    step = d.send(order("past", "2026-11-26T10:00:00Z"))
    assert [x.payload["ping"] for x in step.decisions] == ["past-timer"]
    assert step.decisions[0].event_time == "2026-11-26T09:59:50Z"
