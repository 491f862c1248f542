"""A brute-force model of CONTRACT.md sections 2 and 6, for checking the real processor.

Plain Python over plain dicts and lists: no Rete network, no heap, no facts layer. Every
window is recomputed from scratch by scanning everything seen so far. Decoding is the
codec's business (``streamrules.codec.decode`` decides what is malformed); everything after
that is modelled here from the contract's sentences.

Ordering model (the pipeline's documented agenda order):
- clock-caused decisions first (escalations, in deadline order, ties in opening order),
  then the event's decisions;
- order_placed: ``discount`` then ``payments_hold``;
- incident_opened: ``incident_storm`` then ``payments_hold`` (newest order first);
- incident_resolved: ``error_budget_burn`` then ``error_budget_exhausted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streamrules.codec import Record, decode, format_ms
from streamrules.errors import DecodeError

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
ESCALATE = {1: 5 * MIN, 2: 15 * MIN}
BUDGET_S = 2592
WINDOWS = (("error_budget_burn", HOUR, 51_840), ("error_budget_exhausted", 30 * DAY, 2_592_000))


@dataclass
class Out:
    decisions: list[tuple[str, str, str, dict[str, Any], list[tuple[str, str]]]] = field(
        default_factory=list
    )
    dead: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _Order:
    data: dict[str, Any]
    ts: int
    seq: int
    total: float


@dataclass
class _Incident:
    id: str
    service: str
    severity: int
    opened: int
    acked: bool = False


class ContractModel:
    def __init__(self, lateness_ms: int = 60_000) -> None:
        self.lateness = lateness_ms
        self.wm: int | None = None
        self.orders: dict[str, _Order] = {}  # possibly expired: liveness is computed
        self.incidents: dict[tuple[str, str], _Incident] = {}  # by (service, incident_id)
        self.openings: dict[tuple[str, str], int] = {}  # (service, id) -> latest opening
        self.downtimes: list[tuple[str, str, int, int]] = []  # service, id, resolved, ms
        # deadline, seq, service, id, opened
        self.timers: list[tuple[int, int, str, str, int]] = []
        self.storm_active: set[str] = set()
        self.budget_active: set[tuple[str, str]] = set()
        self.seq = 0

    # -- liveness, recomputed by scanning ---------------------------------------------------

    def live_order(self, o: _Order, at: int) -> bool:
        return o.ts + HOUR > at

    def live_incident(self, i: _Incident, at: int) -> bool:
        return i.opened + 7 * DAY > at

    def storm_ids(self, service: str, at: int) -> list[str]:
        return sorted(
            i for (s, i), t in self.openings.items() if s == service and t > at - 30 * MIN
        )

    def window_ms(self, service: str, length: int, at: int) -> tuple[int, list[str]]:
        rows = [(i, ms) for s, i, r, ms in self.downtimes if s == service and r + length > at]
        return sum(ms for _, ms in rows), sorted(i for i, _ in rows)

    def outage(self, at: int) -> bool:
        return any(
            i.service == "payments" and i.severity <= 2 and self.live_incident(i, at)
            for i in self.incidents.values()
        )

    # -- one record --------------------------------------------------------------------------

    def run(self, records: Iterable[Record]) -> Out:
        out = Out()
        for n, record in enumerate(records):
            try:
                event = decode(record)
            except DecodeError as exc:
                out.dead.append((n, exc.reason))
                continue
            ts = event.ts_ms
            if self.wm is not None and ts < self.wm - self.lateness:
                out.dead.append((n, "late_event"))
                continue
            self.wm = ts if self.wm is None else max(self.wm, ts)
            self.clock(out)
            self.apply(event.type, dict(event.data), ts, event.ts.weekday(), out)
        return out

    def advance(self, ts: int, out: Out) -> None:
        self.wm = ts if self.wm is None else max(self.wm, ts)
        self.clock(out)

    def clock(self, out: Out) -> None:
        wm = self.wm
        assert wm is not None
        # Escalations due, in deadline order (ties: the order they were set).
        for deadline, seq, service, iid, opened in sorted(t for t in self.timers if t[0] <= wm):
            self.timers.remove((deadline, seq, service, iid, opened))
            inc = self.incidents.get((service, iid))
            if (
                inc is None
                or inc.opened != opened
                or inc.acked
                or not self.live_incident(inc, deadline)
            ):
                continue
            out.decisions.append(
                (
                    "incident_escalation",
                    inc.service,
                    format_ms(deadline),
                    {
                        "incident_id": iid,
                        "service": inc.service,
                        "severity": inc.severity,
                        "deadline": format_ms(deadline),
                    },
                    [("Incident", iid)],
                )
            )
        # Expired facts leave; windows only shrink between events, so a state flag whose
        # window is below its threshold now was reset at some expiry since.
        for key in [k for k, inc in self.incidents.items() if not self.live_incident(inc, wm)]:
            del self.incidents[key]
        for oid in [o for o, od in self.orders.items() if not self.live_order(od, wm)]:
            del self.orders[oid]
        # Forget what no window can see any more (keeps the scans short, changes nothing).
        self.openings = {k: t for k, t in self.openings.items() if t > wm - 30 * MIN}
        self.downtimes = [d for d in self.downtimes if d[2] + 30 * DAY > wm]
        for service in list(self.storm_active):
            if len(self.storm_ids(service, wm)) < 3:
                self.storm_active.discard(service)
        if self.budget_active:
            sums: dict[tuple[str, str], int] = {}
            for service, _iid, resolved_ms, ms in self.downtimes:
                for rule, length, _threshold in WINDOWS:
                    if resolved_ms + length > wm:
                        sums[(service, rule)] = sums.get((service, rule), 0) + ms
            for service, rule in list(self.budget_active):
                threshold = next(th for r, _ln, th in WINDOWS if r == rule)
                if sums.get((service, rule), 0) <= threshold:
                    self.budget_active.discard((service, rule))

    def apply(self, type_: str, data: dict[str, Any], ts: int, weekday: int, out: Out) -> None:
        wm = self.wm
        assert wm is not None
        if type_ == "order_placed":
            oid = data["order_id"]
            if oid in self.orders:
                return  # duplicate of a live order
            self.seq += 1
            total = sum(item["qty"] * item["price"] for item in data["items"])
            order = _Order(data, ts, self.seq, total)
            self.orders[oid] = order
            count = sum(item["qty"] for item in data["items"])
            if weekday == 4:
                pct, reasons = 0, ["friday"]
            else:
                cands = {}
                if data["logged_in"]:
                    cands["logged_in"] = 20
                if count > 2:
                    cands["more_than_2_items"] = 30
                pct, reasons = max(cands.values(), default=0), sorted(cands)
            cid = data["customer_id"]
            t = format_ms(ts)
            payload = {"order_id": oid, "customer_id": cid, "discount_pct": pct, "reasons": reasons}
            out.decisions.append(("discount", cid, t, payload, [("Order", oid)]))
            if total >= 500 and self.live_order(order, wm) and self.outage(wm):
                out.decisions.append(self._hold(order, t))
        elif type_ == "incident_opened":
            iid, service, sev = data["incident_id"], data["service"], data["severity"]
            key = (service, iid)
            if key in self.incidents:
                return  # duplicate of a live incident
            before = self.outage(wm)
            self.seq += 1
            self.incidents[key] = _Incident(iid, service, sev, ts)
            if sev in ESCALATE:
                self.timers.append((ts + ESCALATE[sev], self.seq, service, iid, ts))
            self.openings[key] = max(ts, self.openings.get(key, ts))
            t = format_ms(ts)
            ids = self.storm_ids(service, wm)
            if len(ids) >= 3 and service not in self.storm_active:
                self.storm_active.add(service)
                out.decisions.append(
                    (
                        "incident_storm",
                        service,
                        t,
                        {"service": service, "count": len(ids), "incident_ids": ids},
                        [("Incident", i) for i in ids],
                    )
                )
            if not before and self.outage(wm):
                big = [o for o in self.orders.values() if o.total >= 500 and self.live_order(o, wm)]
                for order in sorted(big, key=lambda o: -o.seq):
                    out.decisions.append(self._hold(order, t))
        elif type_ == "incident_acknowledged":
            inc = self.incidents.get((data["service"], data["incident_id"]))
            if inc is not None:
                inc.acked = True
        elif type_ == "incident_resolved":
            inc = self.incidents.pop((data["service"], data["incident_id"]), None)
            if inc is None or inc.severity > 2:
                return
            service = inc.service
            self.downtimes.append((service, inc.id, ts, max(0, ts - inc.opened)))
            for rule, length, threshold in WINDOWS:
                total, ids = self.window_ms(service, length, wm)
                if total > threshold and (service, rule) not in self.budget_active:
                    self.budget_active.add((service, rule))
                    out.decisions.append(
                        (
                            rule,
                            service,
                            format_ms(ts),
                            {"service": service, "downtime_s": total // 1000, "budget_s": BUDGET_S},
                            [("Incident", i) for i in ids],
                        )
                    )

    def _hold(
        self, order: _Order, t: str
    ) -> tuple[str, str, str, dict[str, Any], list[tuple[str, str]]]:
        d = order.data
        payload = {"order_id": d["order_id"], "customer_id": d["customer_id"], "total": order.total}
        return ("payments_hold", d["customer_id"], t, payload, [("Order", d["order_id"])])
