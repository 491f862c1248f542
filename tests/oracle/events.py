"""Small builders of input events (dicts) for the tests of the facts layer, the pipeline
and the packs."""

from __future__ import annotations

from typing import Any

import orjson

from streamrules.codec import Record, topic_for_type


def order(
    order_id: str = "o-1",
    ts: str = "2026-11-26T10:00:00Z",  # a Thursday
    *,
    customer_id: str = "c-7",
    logged_in: bool = False,
    items: list[tuple[int, float]] | None = None,
) -> dict[str, Any]:
    lines = [{"sku": f"A-{n}", "qty": q, "price": p} for n, (q, p) in enumerate(items or [(1, 10)])]
    return {
        "type": "order_placed",
        "order_id": order_id,
        "customer_id": customer_id,
        "logged_in": logged_in,
        "items": lines,
        "ts": ts,
    }


def opened(
    incident_id: str, ts: str, *, service: str = "search", severity: int = 3
) -> dict[str, Any]:
    return {
        "type": "incident_opened",
        "incident_id": incident_id,
        "service": service,
        "severity": severity,
        "ts": ts,
    }


def acked(incident_id: str, ts: str, *, service: str = "search") -> dict[str, Any]:
    return {
        "type": "incident_acknowledged",
        "incident_id": incident_id,
        "service": service,
        "ts": ts,
    }


def resolved(incident_id: str, ts: str, *, service: str = "search") -> dict[str, Any]:
    return {"type": "incident_resolved", "incident_id": incident_id, "service": service, "ts": ts}


def record(event: dict[str, Any], offset: int = 0) -> Record:
    return Record(topic_for_type(event["type"]), 0, offset, None, orjson.dumps(event))
