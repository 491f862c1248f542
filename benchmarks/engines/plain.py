"""Plain Python, no engine: the floor of each workload and the oracle of the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.engines import Unsupported
from benchmarks.workloads import JOIN_THRESHOLD, N_SHARED, Op, Order, discount_pct

NAME = "plain Python"


class orders:
    def __init__(self) -> None:
        self.decisions: list[tuple[Any, ...]] = []

    def feed(self, chunk: Sequence[Order]) -> None:
        out = self.decisions.append
        for o in chunk:
            out((o["order_id"], discount_pct(o)))


class joins:
    def __init__(self, customers: Sequence[dict[str, Any]]) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        self.tier = {c["customer_id"]: c["tier"] for c in customers}
        self.open_payments: set[str] = set()
        self.service: dict[str, str] = {}

    def feed(self, chunk: Sequence[Op]) -> None:
        out = self.decisions.append
        tier = self.tier
        for op in chunk:
            d = op.data
            if op.kind == "order":
                if d["amount"] > JOIN_THRESHOLD and not self.open_payments:
                    t = tier.get(d["customer_id"])
                    if t is not None:
                        out((d["order_id"], t))
            elif op.kind == "open":
                if d["service"] == "payments":
                    self.open_payments.add(d["incident_id"])
            else:
                self.open_payments.discard(d["incident_id"])


class scaling:
    def __init__(self, rules: int) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        self.shared = set(range(N_SHARED))

        def make(i: int) -> Any:
            def rule(eid: int, key: int) -> None:
                if key in self.shared:
                    self.decisions.append((eid, i))

            return rule

        self.rules = [make(i) for i in range(rules)]

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        rules = self.rules
        for eid, kind, key in chunk:
            rules[kind](eid, key)


def manners(guests: Sequence[tuple[str, str, int]], n: int) -> Any:
    raise Unsupported("the floor has no search to compare with")
