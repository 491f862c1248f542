"""durable-rules 2.0 on the benchmark workloads.

Known limits, handled here: ``assert_fact`` raises for every fact that no rule matches
(caught); rulesets are global, so each runner gets a fresh name; a ruleset of more than
512 rules testing one attribute never finishes building (skipped, with the reason); facts
are deduplicated by a 32-bit hash, so distinct facts may be rejected (the decision check
reports it if it happens).
"""

# ruff: noqa: E712  (durable's DSL compares attributes to True/False)
from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from typing import Any

from durable import engine
from durable.lang import assert_fact, c, m, none, retract_fact, ruleset, when_all

from benchmarks.engines import Unsupported
from benchmarks.workloads import JOIN_THRESHOLD, N_SHARED, Op, Order

NAME = "durable-rules"
MAX_RULES = 512
_names = itertools.count()


def _assert(rs: str, fact: dict[str, Any]) -> None:
    with contextlib.suppress(engine.MessageNotHandledException):
        assert_fact(rs, fact)


def _retract(rs: str, fact: dict[str, Any]) -> None:
    with contextlib.suppress(engine.MessageNotHandledException):
        retract_fact(rs, fact)


class orders:
    def __init__(self) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        self.rs = rs = f"orders{next(_names)}"
        with ruleset(rs):

            @when_all((m.t == "order") & (m.friday == True))
            def friday(cx: Any) -> None:
                out((cx.m.order_id, 0))

            @when_all(
                (m.t == "order") & (m.friday == False) & (m.logged_in == True) & (m.items > 2)
            )
            def both(cx: Any) -> None:
                out((cx.m.order_id, 30))

            @when_all(
                (m.t == "order") & (m.friday == False) & (m.logged_in == False) & (m.items > 2)
            )
            def items(cx: Any) -> None:
                out((cx.m.order_id, 30))

            @when_all(
                (m.t == "order") & (m.friday == False) & (m.logged_in == True) & (m.items <= 2)
            )
            def logged_in(cx: Any) -> None:
                out((cx.m.order_id, 20))

            @when_all(
                (m.t == "order") & (m.friday == False) & (m.logged_in == False) & (m.items <= 2)
            )
            def nothing(cx: Any) -> None:
                out((cx.m.order_id, 0))

    def feed(self, chunk: Sequence[Order]) -> None:
        rs = self.rs
        for o in chunk:
            f = {"t": "order", **o}
            _assert(rs, f)
            _retract(rs, f)


class joins:
    def __init__(self, customers: Sequence[dict[str, Any]]) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        self.rs = rs = f"joins{next(_names)}"
        with ruleset(rs):

            @when_all(
                c.o << (m.t == "order") & (m.amount > JOIN_THRESHOLD),
                c.cu << (m.t == "customer") & (m.customer_id == c.o.customer_id),
                none((m.t == "incident") & (m.service == "payments")),
            )
            def big_order(cx: Any) -> None:
                out((cx.o.order_id, cx.cu.tier))

        for cu in customers:
            _assert(rs, {"t": "customer", **cu})
        self.incidents: dict[str, dict[str, Any]] = {}

    def feed(self, chunk: Sequence[Op]) -> None:
        rs = self.rs
        for op in chunk:
            if op.kind == "order":
                f = {"t": "order", **op.data}
                _assert(rs, f)
                _retract(rs, f)
            elif op.kind == "open":
                f = self.incidents[op.data["incident_id"]] = {"t": "incident", **op.data}
                _assert(rs, f)
            else:
                _retract(rs, self.incidents.pop(op.data["incident_id"]))


class scaling:
    def __init__(self, rules: int) -> None:
        if rules > MAX_RULES:
            raise Unsupported(
                f"a ruleset of more than {MAX_RULES} rules on one attribute never finishes "
                "building (spins at 100% CPU)"
            )
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        self.rs = rs = f"scaling{next(_names)}"
        with ruleset(rs):
            for i in range(rules):
                # One parameter only: durable treats a two-parameter action as async.
                when_all(
                    c.e << (m.t == "ev") & (m.kind == i),
                    c.s << (m.t == "shared") & (m.key == c.e.key),
                )(_action(out, i))
        try:
            for k in range(N_SHARED):
                _assert(rs, {"t": "shared", "key": k})
        except Exception as exc:  # its C core reports errors as bare exceptions
            raise Unsupported(f"loading the shared facts failed: {exc}") from exc

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        rs = self.rs
        for eid, kind, key in chunk:
            f = {"t": "ev", "eid": eid, "kind": kind, "key": key}
            _assert(rs, f)
            _retract(rs, f)


def _action(out: Any, i: int) -> Any:
    def action(cx: Any) -> None:
        out((cx.e.eid, i))

    return action


def manners(guests: Sequence[tuple[str, str, int]], n: int) -> Any:
    raise Unsupported(
        "not ported: durable-rules fires as facts arrive and has no in-place modify with "
        "recency-ordered conflict resolution, which Manners' depth-first search relies on"
    )
