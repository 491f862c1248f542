"""The SRE pack, rule by rule against CONTRACT.md section 6, with the edges it fixes."""

from __future__ import annotations

import pytest

from streamrules.facts import Incident
from streamrules.testing import RulesTestDriver
from tests.oracle.events import acked, opened, order, resolved


def T(hms: str, day: int = 26) -> str:
    """A time on Thursday 2026-11-26 (or another November day), UTC."""
    if hms.count(":") == 1:
        hms += ":00"
    return f"2026-11-{day:02d}T{hms}Z"


def sre() -> RulesTestDriver:
    return RulesTestDriver(["streamrules.packs.sre"])


def rules(d: RulesTestDriver) -> list[str]:
    return [dec.rule for dec in d.decisions]


# -- incident_escalation -------------------------------------------------------------------


def test_escalation_fires_when_the_watermark_reaches_the_deadline() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), service="payments", severity=1))
    assert d.advance_to(T("10:04:59.999")).decisions == []
    (dec,) = d.advance_to(T("10:05")).decisions
    assert dec.rule == "incident_escalation"
    assert dec.key == "payments"
    assert dec.event_time == T("10:05")
    assert dec.payload == {
        "incident_id": "i-1",
        "service": "payments",
        "severity": 1,
        "deadline": T("10:05"),
    }
    assert dec.facts == ({"type": "Incident", "id": "i-1"},)
    assert d.advance_to(T("12:00")).decisions == []  # once


def test_acknowledgement_just_before_the_deadline_prevents_it() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    d.send(acked("i-1", T("10:04:59.999")))
    d.advance_to(T("11:00"))
    assert rules(d) == []


def test_acknowledgement_exactly_at_the_deadline_is_too_late() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    step = d.send(acked("i-1", T("10:05")))
    assert [dec.rule for dec in step.decisions] == ["incident_escalation"]


def test_resolution_before_the_deadline_prevents_it() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=2))
    d.send(resolved("i-1", T("10:14:59")))
    d.advance_to(T("11:00"))
    assert "incident_escalation" not in rules(d)


def test_severity_2_waits_15_minutes_and_3_4_never_escalate() -> None:
    d = sre()
    d.send(opened("i-2", T("10:00"), severity=2))
    d.send(opened("i-3", T("10:00"), severity=3, service="checkout"))
    d.send(opened("i-4", T("10:00"), severity=4, service="payments"))
    assert d.advance_to(T("10:14:59.999")).decisions == []
    assert [x.payload["incident_id"] for x in d.advance_to(T("10:15")).decisions] == ["i-2"]
    d.advance_to(T("10:00", day=28))
    assert len(d.decisions_of("incident_escalation")) == 1


def test_a_later_event_fires_the_escalation_with_the_deadline_as_event_time() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    step = d.send(order("o-1", T("10:30")))  # the watermark jumps past the deadline
    (dec,) = step.decisions
    assert dec.event_time == T("10:05")
    assert d.facts(Incident)[0]["acknowledged"] is False


def test_escalations_due_together_fire_in_deadline_order() -> None:
    d = sre()
    d.send(opened("a", T("10:00"), severity=2))  # deadline 10:15
    d.send(opened("b", T("10:02"), severity=1))  # deadline 10:07
    d.send(opened("c", T("10:02"), severity=1, service="payments"))  # 10:07, set after b
    step = d.advance_to(T("11:00"))
    assert [x.payload["incident_id"] for x in step.decisions] == ["b", "c", "a"]


def test_duplicate_opening_does_not_arm_twice_and_is_counted() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    d.send(opened("i-1", T("10:01"), severity=2))
    d.advance_to(T("11:00"))
    assert len(d.decisions_of("incident_escalation")) == 1
    assert d.stats()["duplicates"] == 1


def test_unknown_acks_and_resolves_are_counted_and_ignored() -> None:
    d = sre()
    d.send(acked("nope", T("10:00")))
    d.send(resolved("nope", T("10:01")))
    assert d.decisions == [] and d.dead_letters == []
    assert d.stats()["unknown_incidents"] == 2


def test_acknowledgement_modifies_the_incident_without_refiring_anything() -> None:
    d = sre()
    d.send(order("o-1", T("10:00"), items=[(1, 600)]))
    d.send(opened("i-1", T("10:01"), service="payments", severity=1))
    before = len(d.decisions)
    d.send(acked("i-1", T("10:02"), service="payments"))
    (inc,) = d.facts(Incident)
    assert inc["acknowledged"] is True and inc["acknowledged_ms"] is not None
    assert len(d.decisions) == before


# -- incident_storm ------------------------------------------------------------------------


def test_storm_fires_at_the_third_opening_with_sorted_ids() -> None:
    d = sre()
    d.send(opened("i-9", T("10:00")))
    d.send(opened("i-10", T("10:10")))
    step = d.send(opened("i-2", T("10:20")))
    (dec,) = step.decisions
    assert dec.rule == "incident_storm" and dec.key == "search"
    assert dec.event_time == T("10:20")
    assert dec.payload == {"service": "search", "count": 3, "incident_ids": ["i-10", "i-2", "i-9"]}
    assert {f["id"] for f in dec.facts} == {"i-9", "i-10", "i-2"}


def test_storm_fires_once_per_crossing_not_on_each_increase() -> None:
    d = sre()
    for n, hm in enumerate(["10:00", "10:05", "10:10", "10:15", "10:20"]):
        d.send(opened(f"i-{n}", T(hm)))
    assert len(d.decisions_of("incident_storm")) == 1


def test_exactly_30_minutes_ago_is_outside_the_window() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00")))
    d.send(opened("i-2", T("10:10")))
    d.send(opened("i-3", T("10:30")))  # i-1 is exactly 30 min old: out
    assert d.decisions_of("incident_storm") == []
    d2 = sre()
    d2.send(opened("i-1", T("10:00")))
    d2.send(opened("i-2", T("10:10")))
    d2.send(opened("i-3", T("10:29:59.999")))
    assert len(d2.decisions_of("incident_storm")) == 1


def test_storm_fires_again_after_falling_below_three() -> None:
    d = sre()
    for n, hm in enumerate(["10:00", "10:01", "10:02"]):
        d.send(opened(f"a{n}", T(hm)))
    d.send(opened("b0", T("10:31")))  # a0, a1 expired: count 2 -> 3? a2 + b0 = 2
    d.send(opened("b1", T("10:31:30")))  # a2, b0, b1 = 3: a new crossing
    storms = d.payloads("incident_storm")
    assert [p["incident_ids"] for p in storms] == [["a0", "a1", "a2"], ["a2", "b0", "b1"]]


def test_resolved_incidents_still_count_and_services_are_separate() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00")))
    d.send(resolved("i-1", T("10:01")))
    d.send(opened("i-2", T("10:02")))
    d.send(opened("x-1", T("10:03"), service="payments"))
    assert d.decisions_of("incident_storm") == []
    d.send(opened("i-3", T("10:04")))
    assert d.payloads("incident_storm") == [
        {"service": "search", "count": 3, "incident_ids": ["i-1", "i-2", "i-3"]}
    ]


def test_a_repeated_opening_counts_once_even_after_resolution() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00")))
    d.send(opened("i-1", T("10:00:10")))  # duplicate of a live incident
    d.send(opened("i-2", T("10:01")))
    d.send(resolved("i-1", T("10:02")))
    d.send(opened("i-1", T("10:03")))  # opened again: a new fact, the same incident id
    assert d.decisions_of("incident_storm") == []
    d.send(opened("i-3", T("10:04")))
    assert d.payloads("incident_storm")[0]["incident_ids"] == ["i-1", "i-2", "i-3"]


# -- payments_hold -------------------------------------------------------------------------


def test_big_order_during_a_payments_outage_is_held() -> None:
    d = sre()
    d.send(opened("p-1", T("10:00"), service="payments", severity=2))
    step = d.send(order("o-1", T("10:01"), customer_id="c-5", items=[(2, 250)]))
    (dec,) = step.decisions
    assert dec.rule == "payments_hold" and dec.key == "c-5"
    assert dec.payload == {"order_id": "o-1", "customer_id": "c-5", "total": 500}
    assert dec.facts == ({"type": "Order", "id": "o-1"},)


@pytest.mark.parametrize(
    ("total", "service", "severity", "held"),
    [
        (499.99, "payments", 1, False),
        (500, "payments", 1, True),
        (1000, "payments", 3, False),
        (1000, "search", 1, False),
        (1000, "payments", 2, True),
    ],
)
def test_hold_conditions(total: float, service: str, severity: int, held: bool) -> None:
    d = sre()
    d.send(opened("p-1", T("10:00"), service=service, severity=severity))
    d.send(order("o-1", T("10:01"), items=[(1, total)]))
    assert bool(d.decisions_of("payments_hold")) is held


def test_hold_fires_when_the_outage_starts_for_live_orders_newest_first() -> None:
    d = sre()
    d.send(order("o-1", T("10:00"), items=[(1, 900)]))
    d.send(order("o-2", T("10:05"), items=[(1, 50)]))
    d.send(order("o-3", T("10:10"), items=[(1, 700)]))
    step = d.send(opened("p-1", T("10:20"), service="payments", severity=1))
    assert [x.payload["order_id"] for x in step.decisions] == ["o-3", "o-1"]
    assert {x.event_time for x in step.decisions} == {T("10:20")}


def test_hold_fires_once_while_true_and_again_after_it_became_false() -> None:
    d = sre()
    d.send(order("o-1", T("10:00"), items=[(1, 900)]))
    d.send(opened("p-1", T("10:01"), service="payments", severity=1))
    d.send(opened("p-2", T("10:02"), service="payments", severity=2))  # already true
    d.send(acked("p-1", T("10:03"), service="payments"))
    d.send(resolved("p-1", T("10:04"), service="payments"))  # p-2 still open
    d.send(resolved("p-2", T("10:05"), service="payments"))  # now false
    d.send(opened("p-3", T("10:06"), service="payments", severity=1))  # true again
    assert [x.event_time for x in d.decisions_of("payments_hold")] == [T("10:01"), T("10:06")]


def test_no_hold_for_an_expired_order() -> None:
    d = sre()
    d.send(order("o-1", T("10:00"), items=[(1, 900)]))
    d.send(opened("p-1", T("11:00"), service="payments", severity=1))  # o-1 expired at 11:00
    assert d.decisions_of("payments_hold") == []


# -- error budget --------------------------------------------------------------------------


def budget(d: RulesTestDriver, rule: str) -> list[tuple[str, int]]:
    return [(x.event_time, x.payload["downtime_s"]) for x in d.decisions_of(rule)]


def test_burn_threshold_is_strictly_above_51_84_s() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    d.send(resolved("i-1", T("10:00:51.840")))
    assert budget(d, "error_budget_burn") == []
    d.send(opened("i-2", T("10:01"), severity=2, service="payments"))
    d.send(resolved("i-2", T("10:01:51.841"), service="payments"))
    (dec,) = d.decisions_of("error_budget_burn")
    assert dec.key == "payments"
    assert dec.payload == {"service": "payments", "downtime_s": 51, "budget_s": 2592}
    assert dec.event_time == T("10:01:51.841")


def test_burn_sums_the_trailing_hour_and_fires_once_per_crossing() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    d.send(resolved("i-1", T("10:00:30")))
    d.send(opened("i-2", T("10:10"), severity=2))
    d.send(resolved("i-2", T("10:10:30")))  # 60 s in the hour: crossing
    d.send(opened("i-3", T("10:20"), severity=1))
    d.send(resolved("i-3", T("10:20:30")))  # 90 s: still above, no new decision
    d.send(opened("i-4", T("10:20"), severity=3))
    d.send(resolved("i-4", T("10:50")))  # severity 3: no downtime
    assert budget(d, "error_budget_burn") == [(T("10:10:30"), 60)]
    # at 11:10:30 i-1 and i-2 have left the hour (30 s left): a new crossing may happen
    d.send(opened("i-5", T("11:10:30"), severity=1))
    d.send(resolved("i-5", T("11:11:00")))  # i-3 30 s + 30 s = 60 s
    assert budget(d, "error_budget_burn") == [(T("10:10:30"), 60), (T("11:11:00"), 60)]


def test_resolution_exactly_one_hour_ago_is_out_of_the_burn_window() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00"), severity=1))
    d.send(resolved("i-1", T("10:00:40")))
    d.send(opened("i-2", T("11:00"), severity=1))
    d.send(resolved("i-2", T("11:00:40")))  # i-1 resolved exactly 1 h ago: out
    assert budget(d, "error_budget_burn") == []


def test_downtime_counts_at_resolution_and_burn_comes_before_exhausted() -> None:
    d = sre()
    d.send(opened("i-1", T("08:00"), severity=1, service="payments"))
    d.send(acked("i-1", T("08:01"), service="payments"))
    step = d.send(resolved("i-1", T("09:00:00.999"), service="payments"))
    assert [(x.rule, x.payload["downtime_s"]) for x in step.decisions] == [
        ("error_budget_burn", 3600),
        ("error_budget_exhausted", 3600),
    ]


def test_exhausted_sums_30_days_beyond_the_7_day_incident_fact() -> None:
    d = sre()
    d.send(opened("i-1", T("10:00", day=1), severity=1))
    d.send(acked("i-1", T("10:01", day=1)))
    d.send(resolved("i-1", T("10:25", day=1)))  # 1500 s
    d.send(opened("i-2", T("10:00", day=10), severity=2))
    d.send(acked("i-2", T("10:01", day=10)))
    d.send(resolved("i-2", T("10:15", day=10)))  # 900 s: 2400 in 30 days
    assert budget(d, "error_budget_exhausted") == []
    d.send(opened("i-3", T("10:00", day=20), severity=2))
    d.send(acked("i-3", T("10:01", day=20)))
    d.send(resolved("i-3", T("10:03:12.001", day=20)))  # 192.001 s: 2592.001 > 2592
    assert budget(d, "error_budget_exhausted") == [(T("10:03:12.001", day=20), 2592)]
    assert len(d.decisions_of("error_budget_burn")) == 3


def test_exhausted_fires_again_after_dropping_back_by_expiry() -> None:
    d = sre()
    d.send(opened("i-1", "2026-10-01T10:00:00Z", severity=1))
    d.send(acked("i-1", "2026-10-01T10:01:00Z"))
    d.send(resolved("i-1", "2026-10-01T11:00:00Z"))  # 3600 s: exhausted
    d.send(opened("i-2", "2026-10-30T10:00:00Z", severity=1))
    d.send(acked("i-2", "2026-10-30T10:01:00Z"))
    d.send(resolved("i-2", "2026-10-30T10:10:00Z"))  # still above: nothing new
    assert len(d.decisions_of("error_budget_exhausted")) == 1
    # 2026-10-31T11:00Z: i-1 leaves the 30 days (600 s left): back below
    d.send(opened("i-3", "2026-11-01T10:00:00Z", severity=1))
    d.send(acked("i-3", "2026-11-01T10:01:00Z"))
    d.send(resolved("i-3", "2026-11-01T10:40:00Z"))  # 600 + 2400 = 3000 s
    assert budget(d, "error_budget_exhausted") == [
        ("2026-10-01T11:00:00Z", 3600),
        ("2026-11-01T10:40:00Z", 3000),
    ]
