"""Rule pack ``sre`` (contract section 6): escalation, storms, payment holds, error budgets.

Load it with ``--rules streamrules.packs.sre`` (it is on by default).

Each service's SLO is 99.9% availability over 30 days, so its error budget is 2592 s of
downtime. The pack shows the engine's tools where they fit:

- a timer (``ctx.schedule``) for escalation deadlines;
- facts with their own expiry (``ctx.insert(..., expires_at_ms=...)``) for the trailing
  windows: ``Opening`` (30 minutes) and ``Downtime`` (1 hour and 30 days, kept apart from
  the 7-day ``Incident`` fact that the 30-day window outlives);
- accumulate (``Collect``, ``Count``, ``Sum`` grouped by service) over those windows;
- ``NOT`` and a small state fact (``StormActive``, ``BudgetAlert``) to fire once per
  crossing, and a rule that clears the state when the window falls back;
- a logical fact (``PaymentsOutage``) and ``EXISTS`` for "an open payments incident".

Helper productions (salience 100) keep that bookkeeping up to date before any decision
rule fires. Decision rules that can fire for the same event are ordered by salience.
"""

from __future__ import annotations

from typing import ClassVar

from streamrules.codec.timefmt import format_ms
from streamrules.facts import Incident, IncidentOpened, IncidentResolved, Order, RuleContext
from streamrules.rete import EXISTS, Collect, Count, Fact, Filter, Production, Sum, V

__all__ = [
    "BUDGET_S",
    "BudgetAlert",
    "Downtime",
    "EscalationDue",
    "Opening",
    "PaymentsOutage",
    "StormActive",
]

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

ESCALATE_AFTER_MS = {1: 5 * MINUTE_MS, 2: 15 * MINUTE_MS}  # severities 3, 4: never
STORM_WINDOW_MS = 30 * MINUTE_MS
STORM_MIN_INCIDENTS = 3
HOLD_MIN_TOTAL = 500
BUDGET_S = 2592  # 0.1% of 30 days
BUDGET_MS = BUDGET_S * 1000
BURN_WINDOW_MS = HOUR_MS
BURN_THRESHOLD_MS = BUDGET_MS * 2 // 100  # 51.84 s: a burn rate of 14.4 over one hour
EXHAUSTED_WINDOW_MS = 30 * DAY_MS
EXHAUSTED_THRESHOLD_MS = BUDGET_MS


class EscalationDue(Fact):
    """Timer fact: the escalation deadline of one opening of an incident (``service``,
    ``incident_id``) has come."""

    id_field: ClassVar[str] = "incident_id"


class Opening(Fact):
    """An incident opened within the trailing 30 minutes (expires 30 min after)."""

    id_field: ClassVar[str] = "incident_id"


class StormActive(Fact):
    """A service has had 3+ openings in the storm window since its last crossing."""

    id_field: ClassVar[str] = "service"


class PaymentsOutage(Fact):
    """Logical: an open ``payments`` incident of severity 1 or 2 (gone with it)."""

    id_field: ClassVar[str] = "incident_id"


class Downtime(Fact):
    """The downtime of a resolved severity 1 or 2 incident, in one budget window
    (``window`` is ``"1h"`` or ``"30d"``); expires when it leaves that window."""

    id_field: ClassVar[str] = "incident_id"


class BudgetAlert(Fact):
    """A service's downtime in ``window`` is above its threshold since the crossing."""

    id_field: ClassVar[str] = "service"


def _budget_payload(service: str, total_ms: int) -> dict[str, object]:
    return {"service": service, "downtime_s": total_ms // 1000, "budget_s": BUDGET_S}


# -- incident_escalation -------------------------------------------------------------------


@Production(
    IncidentOpened(
        incident_id=V("id"), service=V("service"), severity=V("severity"), ts_ms=V("opened")
    )
    & Filter(lambda severity: severity in ESCALATE_AFTER_MS),
    salience=100,
    name="arm_escalation",
)
def arm_escalation(id: str, service: str, severity: int, opened: int, ctx: RuleContext) -> None:
    """Set the escalation timer when a severity 1 or 2 incident opens."""
    deadline = opened + ESCALATE_AFTER_MS[severity]
    ctx.schedule(
        deadline,
        EscalationDue(incident_id=id, service=service, opened_ms=opened, deadline_ms=deadline),
    )


@Production(
    EscalationDue(
        incident_id=V("id"), service=V("service"), opened_ms=V("opened"), deadline_ms=V("deadline")
    )
    & V("incident")
    << Incident(
        incident_id=V("id"), service=V("service"), opened_ms=V("opened"), acknowledged=False
    ),
    name="incident_escalation",
)
def incident_escalation(incident: Fact, deadline: int, ctx: RuleContext) -> None:
    """ "an incident of severity 1 not acknowledged or resolved within 5 minutes of opening
    (severity 2: 15 minutes; 3 and 4: never). It fires when the watermark reaches the
    deadline; an acknowledgement or resolution must come strictly before it."

    The timer fires when the watermark reaches the deadline, before an event at that very
    time is applied: an acknowledgement at the deadline is too late. A resolved incident
    is no longer a fact, so it does not match.
    """
    ctx.emit(
        incident["service"],
        {
            "incident_id": incident["incident_id"],
            "service": incident["service"],
            "severity": incident["severity"],
            "deadline": format_ms(deadline),
        },
        facts=[incident],
    )


# -- incident_storm ------------------------------------------------------------------------


@Production(
    IncidentOpened(incident_id=V("id"), service=V("service"), ts_ms=V("opened"))
    & ~Opening(incident_id=V("id"), service=V("service")),
    salience=100,
    name="note_opening",
)
def note_opening(id: str, service: str, opened: int, ctx: RuleContext) -> None:
    """Keep each opening for the 30-minute storm window: (t - 30 min, t]."""
    ctx.insert(
        Opening(incident_id=id, service=service, ts_ms=opened),
        expires_at_ms=opened + STORM_WINDOW_MS,
    )


@Production(
    IncidentOpened(incident_id=V("id"), service=V("service"), ts_ms=V("opened"))
    & V("opening") << Opening(incident_id=V("id"), service=V("service"), ts_ms=V("seen"))
    & Filter(lambda opened, seen: opened > seen),
    salience=100,
    name="renew_opening",
)
def renew_opening(opening: Fact, opened: int, ctx: RuleContext) -> None:
    """An incident opened again (after it was resolved) counts once, from its latest
    opening."""
    ctx.expire_at(ctx.modify(opening, ts_ms=opened), opened + STORM_WINDOW_MS)


@Production(
    Collect(
        V("id"),
        Opening(service=V("service"), incident_id=V("id")),
        into="ids",
        group_by=("service",),
    )
    & Filter(lambda ids: len(ids) >= STORM_MIN_INCIDENTS)
    & ~StormActive(service=V("service")),
    salience=10,
    name="incident_storm",
)
def incident_storm(service: str, ids: tuple[str, ...], ctx: RuleContext) -> None:
    """ "3 or more incidents of one service opened within the trailing 30 minutes
    (resolved since or not; a repeated incident_opened counts once). Fires once each time
    the count crosses from below 3 to 3 or more; count and incident_ids (sorted) are those
    at the crossing.\""""
    ctx.insert(StormActive(service=service))
    ctx.emit(
        service,
        {"service": service, "count": len(ids), "incident_ids": list(ids)},
        facts=[("Incident", i) for i in ids],
    )


@Production(
    V("active") << StormActive(service=V("service"))
    & Count(Opening(service=V("service")), into="n")
    & Filter(lambda n: n < STORM_MIN_INCIDENTS),
    salience=100,
    name="storm_over",
)
def storm_over(active: Fact, ctx: RuleContext) -> None:
    """The window fell below 3 openings: the next rise to 3 is a new crossing."""
    ctx.retract(active)


# -- payments_hold -------------------------------------------------------------------------


@Production(
    Incident(service="payments", incident_id=V("id"), severity=V("severity"))
    & Filter(lambda severity: severity <= 2),
    salience=100,
    name="payments_outage",
)
def payments_outage(id: str, ctx: RuleContext) -> None:
    """An open payments incident of severity 1 or 2 is an outage while it is a fact."""
    ctx.insert(PaymentsOutage(incident_id=id), logical=True)


# EXISTS first: with no outage (nearly always) its memory is empty, so an order's
# assertion and retraction stop at the alpha memory instead of building a partial match
# per order. The match's facts (the order) and its recency are the same either way.
@Production(
    EXISTS(PaymentsOutage())
    & V("order") << Order(total=V("total"))
    & Filter(lambda total: total >= HOLD_MIN_TOTAL),
    name="payments_hold",
)
def payments_hold(order: Fact, ctx: RuleContext) -> None:
    """ "an order with total >= 500 and an open (unresolved) payments incident of severity
    1 or 2 are both live. Fires each time this becomes true for a live order."

    ``EXISTS`` makes one match per order however many outages there are: it appears when
    the first outage starts (or the order arrives during one), and goes when the last
    ends.
    """
    ctx.emit(
        order["customer_id"],
        {
            "order_id": order["order_id"],
            "customer_id": order["customer_id"],
            "total": order["total"],
        },
    )


# -- error_budget_burn and error_budget_exhausted ------------------------------------------


@Production(
    IncidentResolved(
        incident_id=V("id"),
        service=V("service"),
        severity=V("severity"),
        resolved_ms=V("resolved"),
        downtime_ms=V("downtime"),
    )
    & Filter(lambda severity: severity <= 2),
    salience=100,
    name="record_downtime",
)
def record_downtime(id: str, service: str, resolved: int, downtime: int, ctx: RuleContext) -> None:
    """Downtime (resolved - opened) counts at its resolution time, in both windows."""
    for window, length in (("1h", BURN_WINDOW_MS), ("30d", EXHAUSTED_WINDOW_MS)):
        ctx.insert(
            Downtime(
                incident_id=id,
                service=service,
                window=window,
                resolved_ms=resolved,
                downtime_ms=downtime,
            ),
            expires_at_ms=resolved + length,
        )


@Production(
    Sum(
        V("ms"),
        Downtime(service=V("service"), window="1h", downtime_ms=V("ms")),
        into="total",
        group_by=("service",),
    )
    & Filter(lambda total: total > BURN_THRESHOLD_MS)
    & ~BudgetAlert(service=V("service"), window="1h")
    & Collect(
        V("id"), Downtime(service=V("service"), window="1h", incident_id=V("id")), into="ids"
    ),
    salience=10,
    name="error_budget_burn",
)
def error_budget_burn(service: str, total: int, ids: tuple[str, ...], ctx: RuleContext) -> None:
    """ "Fires once per crossing when a service's downtime resolved in the trailing 1 hour
    goes above 2% of its budget (51.84 s): a burn rate of 14.4.\""""
    ctx.insert(BudgetAlert(service=service, window="1h"))
    ctx.emit(service, _budget_payload(service, total), facts=[("Incident", i) for i in ids])


@Production(
    V("alert") << BudgetAlert(service=V("service"), window="1h")
    & Sum(V("ms"), Downtime(service=V("service"), window="1h", downtime_ms=V("ms")), into="total")
    & Filter(lambda total: total <= BURN_THRESHOLD_MS),
    salience=100,
    name="burn_over",
)
def burn_over(alert: Fact, ctx: RuleContext) -> None:
    """The hour's downtime fell back to 51.84 s or less: the next rise is a new crossing."""
    ctx.retract(alert)


@Production(
    Sum(
        V("ms"),
        Downtime(service=V("service"), window="30d", downtime_ms=V("ms")),
        into="total",
        group_by=("service",),
    )
    & Filter(lambda total: total > EXHAUSTED_THRESHOLD_MS)
    & ~BudgetAlert(service=V("service"), window="30d")
    & Collect(
        V("id"), Downtime(service=V("service"), window="30d", incident_id=V("id")), into="ids"
    ),
    salience=5,
    name="error_budget_exhausted",
)
def error_budget_exhausted(
    service: str, total: int, ids: tuple[str, ...], ctx: RuleContext
) -> None:
    """ "the same, for downtime resolved in the trailing 30 days going above 100% of the
    budget." (2592 s)"""
    ctx.insert(BudgetAlert(service=service, window="30d"))
    ctx.emit(service, _budget_payload(service, total), facts=[("Incident", i) for i in ids])


@Production(
    V("alert") << BudgetAlert(service=V("service"), window="30d")
    & Sum(V("ms"), Downtime(service=V("service"), window="30d", downtime_ms=V("ms")), into="total")
    & Filter(lambda total: total <= EXHAUSTED_THRESHOLD_MS),
    salience=100,
    name="budget_recovered",
)
def budget_recovered(alert: Fact, ctx: RuleContext) -> None:
    """The 30 days' downtime fell back to the budget or less."""
    ctx.retract(alert)
