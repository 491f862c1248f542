"""Facts stage, mapping: one validated event becomes fact changes (contract sections 1, 2).

- ``order_placed``: assert an ``Order`` (expiry ts + 1 h), unless that order is live
  (a duplicate: counted, ignored).
- ``incident_opened``: assert an ``Incident`` (expiry opened + 7 days) and the event fact
  ``IncidentOpened``, unless that incident is live (a duplicate: counted, ignored).
- ``incident_acknowledged``: modify the live incident (``acknowledged``); an unknown
  incident is counted and ignored.

An incident is identified by (``service``, ``incident_id``) (contract section 1): an
acknowledgement or resolution acts only on the incident of that service with that id, and
the same id on another service is another incident.
- ``incident_resolved``: retract the live incident and assert the event fact
  ``IncidentResolved``; an unknown incident is counted and ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from streamrules.facts.memory import WorkingMemory
from streamrules.facts.types import (
    INCIDENT_TTL_MS,
    ORDER_TTL_MS,
    Incident,
    IncidentOpened,
    IncidentResolved,
    Order,
)
from streamrules.rete import Fact

__all__ = ["EventMapper", "order_fact"]

_new_order = Order.__new__
_fill = dict.__init__


def order_fact(data: Mapping[str, Any], ts: datetime, ts_ms: int) -> Order:
    """The ``Order`` fact of an ``order_placed`` event (derived count and total)."""
    count = 0
    # An int while every price is one, as in the input. (Annotated: compiled, a ``float``
    # total would always be a float, and an inferred ``int`` refuses a float price.)
    total: int | float = 0
    for item in data["items"]:
        qty = item["qty"]
        count += qty
        total += qty * item["price"]
    # Filled as the dict it is: the same fact as Order(order_id=..., ...), without
    # Fact.__init__'s general (*args, **kwargs) path, once per order.
    order = _new_order(Order)
    _fill(
        order,
        order_id=data["order_id"],
        customer_id=data["customer_id"],
        logged_in=data["logged_in"],
        item_count=count,
        total=total,
        ts_ms=ts_ms,
        weekday=ts.weekday(),
    )
    return order


class EventMapper:
    """Applies events to working memory; knows which orders and incidents are live."""

    def __init__(self, memory: WorkingMemory) -> None:
        self._memory = memory
        self.orders: dict[str, Fact] = {}
        self.incidents: dict[tuple[str, str], Fact] = {}  # by (service, incident_id)
        # duplicates, unknown_incidents, repeated_acks (see Pipeline.stats)
        self.counts: Counter[str] = Counter()
        memory.on_forget.append(self._forget)

    def apply(self, type_: str, data: Mapping[str, Any], ts: datetime, ts_ms: int) -> None:
        """Make the fact changes of one event (the watermark has already moved)."""
        if type_ == "order_placed":
            self._order_placed(data, ts, ts_ms)
        elif type_ == "incident_opened":
            self._incident_opened(data, ts_ms)
        elif type_ == "incident_acknowledged":
            self._incident_acknowledged(data, ts_ms)
        elif type_ == "incident_resolved":
            self._incident_resolved(data, ts_ms)
        else:  # pragma: no cover - the codec admits only these types
            raise ValueError(f"no fact mapping for event type {type_!r}")

    def _order_placed(self, data: Mapping[str, Any], ts: datetime, ts_ms: int) -> None:
        order_id = data["order_id"]
        if order_id in self.orders:
            self.counts["duplicates"] += 1
            return
        stored = self._memory.insert(
            order_fact(data, ts, ts_ms), expires_at_ms=ts_ms + ORDER_TTL_MS
        )
        self.orders[order_id] = stored

    def _incident_opened(self, data: Mapping[str, Any], ts_ms: int) -> None:
        incident_id = data["incident_id"]
        service, severity = data["service"], data["severity"]
        key = (service, incident_id)
        if key in self.incidents:
            self.counts["duplicates"] += 1
            return
        incident = Incident(
            incident_id=incident_id,
            service=service,
            severity=severity,
            opened_ms=ts_ms,
            acknowledged=False,
            acknowledged_ms=None,
        )
        self.incidents[key] = self._memory.insert(incident, expires_at_ms=ts_ms + INCIDENT_TTL_MS)
        self._memory.insert_event(
            IncidentOpened(incident_id=incident_id, service=service, severity=severity, ts_ms=ts_ms)
        )

    def _incident_acknowledged(self, data: Mapping[str, Any], ts_ms: int) -> None:
        key = (data["service"], data["incident_id"])
        incident = self.incidents.get(key)
        if incident is None:
            self.counts["unknown_incidents"] += 1
            return
        if incident["acknowledged"]:
            self.counts["repeated_acks"] += 1
            return
        self.incidents[key] = self._memory.modify(
            incident, acknowledged=True, acknowledged_ms=ts_ms
        )

    def _incident_resolved(self, data: Mapping[str, Any], ts_ms: int) -> None:
        incident_id = data["incident_id"]
        key = (data["service"], incident_id)
        incident = self.incidents.get(key)
        if incident is None:
            self.counts["unknown_incidents"] += 1
            return
        self._memory.retract(incident)
        self.incidents.pop(key, None)
        opened_ms = incident["opened_ms"]
        self._memory.insert_event(
            IncidentResolved(
                incident_id=incident_id,
                service=incident["service"],
                severity=incident["severity"],
                opened_ms=opened_ms,
                resolved_ms=ts_ms,
                downtime_ms=max(0, ts_ms - opened_ms),
            )
        )

    def _forget(self, fact: Fact) -> None:
        # A live fact may leave by expiry or by a rule: forget it so that a later event
        # with its id is a new fact rather than a duplicate.
        cls = type(fact)
        if cls is Order:
            if self.orders.get(fact["order_id"]) is fact:
                del self.orders[fact["order_id"]]
        elif cls is Incident:
            key = (fact["service"], fact["incident_id"])
            if self.incidents.get(key) is fact:
                del self.incidents[key]
