"""Benchmark workloads (inputs of the matching stage): the same seeded data for every
engine, and the plain-Python expected decisions that every engine is checked against.

Facts are plain dicts here; each engine module turns them into its own facts. The
weekday test is done by the facts layer in streamrules (``friday`` flag), so every
engine gets the flag rather than a timestamp.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

Order = dict[str, Any]

# (b) joins
JOIN_THRESHOLD = 100.0
N_CUSTOMERS = 1_000
SERVICES = ("payments", "search", "checkout", "auth")

# (c) scaling
N_SHARED = 100


def orders(n: int, seed: int = 1) -> list[Order]:
    """``n`` orders: about 1 in 7 on a Friday, half logged in, 1 to 5 items."""
    rnd = random.Random(seed)
    out: list[Order] = []
    for i in range(n):
        items = rnd.randint(1, 5)
        out.append(
            {
                "order_id": f"o-{i}",
                "customer_id": f"c-{rnd.randrange(1200)}",
                "logged_in": rnd.random() < 0.5,
                "items": items,
                "total": round(items * rnd.uniform(1.0, 60.0), 2),
                "friday": rnd.random() < 1 / 7,
            }
        )
    return out


def discount_pct(o: Order) -> int:
    """The discount rules: 0 on Fridays, else the largest of 20 (logged in) and 30
    (more than 2 items), 0 if neither."""
    if o["friday"]:
        return 0
    if o["items"] > 2:
        return 30
    return 20 if o["logged_in"] else 0


def customers(n: int = N_CUSTOMERS) -> list[dict[str, Any]]:
    return [
        {"customer_id": f"c-{i}", "tier": ("gold", "silver", "bronze")[i % 3]} for i in range(n)
    ]


@dataclass(frozen=True, slots=True)
class Op:
    """One step of the joins stream: an order, or an incident opening or closing."""

    kind: str  # "order" | "open" | "close"
    data: dict[str, Any]


def join_stream(n: int, seed: int = 2) -> list[Op]:
    """``n`` steps: orders (amount 0..300, customers c-0..c-1199, so some have no
    customer) with incidents opening (one step in 100) and closing 20 to 80 steps later;
    a third of incidents are on ``payments``."""
    rnd = random.Random(seed)
    ops: list[Op] = []
    closing: dict[int, list[str]] = {}
    inc = 0
    for i in range(n):
        for iid in closing.pop(i, ()):
            ops.append(Op("close", {"incident_id": iid}))
        if rnd.random() < 0.01:
            inc += 1
            iid = f"i-{inc}"
            service = "payments" if rnd.random() < 1 / 3 else rnd.choice(SERVICES[1:])
            ops.append(Op("open", {"incident_id": iid, "service": service}))
            closing.setdefault(i + rnd.randint(20, 80), []).append(iid)
        ops.append(
            Op(
                "order",
                {
                    "order_id": f"o-{i}",
                    "customer_id": f"c-{rnd.randrange(1200)}",
                    "amount": round(rnd.uniform(0.0, 300.0), 2),
                },
            )
        )
    for iids in closing.values():
        ops.extend(Op("close", {"incident_id": iid}) for iid in iids)
    return ops


def scaling_events(n: int, rules: int, seed: int = 3) -> list[tuple[int, int, int]]:
    """``(event id, kind, key)``: kind picks the one rule that matches, key joins one of
    ``N_SHARED`` shared facts (keys above it join nothing: about 1 in 4)."""
    rnd = random.Random(seed)
    return [(i, rnd.randrange(rules), rnd.randrange(N_SHARED * 4 // 3)) for i in range(n)]


def manners_guests(n: int, seed: int = 4) -> list[tuple[str, str, int]]:
    """Miss Manners guests ``(name, sex, hobby)``, one tuple per hobby: ``n`` guests,
    half of each sex, 2 or 3 of 3 hobbies each (so any two guests share a hobby and the
    depth-first search never dead-ends), in a seeded random order."""
    rnd = random.Random(seed)
    out: list[tuple[str, str, int]] = []
    for g in range(n):
        sex = "m" if g % 2 == 0 else "f"
        hobbies = rnd.sample((1, 2, 3), rnd.choice((2, 3)))
        out.extend((f"g{g + 1}", sex, h) for h in sorted(hobbies))
    return out


def check_seating(guests: list[tuple[str, str, int]], order: list[str], n: int) -> bool:
    """A full seating: every guest once, neighbours of opposite sex sharing a hobby."""
    if len(order) != n or len(set(order)) != n:
        return False
    sex = {g: s for g, s, _ in guests}
    hob: dict[str, set[int]] = {}
    for g, _, h in guests:
        hob.setdefault(g, set()).add(h)
    return all(sex[a] != sex[b] and hob[a] & hob[b] for a, b in itertools.pairwise(order))
