"""CLIPS 6.4 via clipspy on the benchmark workloads.

Rules are written in CLIPS itself; decisions reach Python through a function defined with
``define_function`` (the realistic way to get results out). clipspy 1.0.6 never frees a
retracted fact (its ``Fact.__del__`` calls ``ReleaseFact`` with the wrong arguments and
the error is swallowed), so memory grows and every run gets slower; we use the fixed
form, ``lib.ReleaseFact(fact._fact)`` after each retract, and the output says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import clips
from clips._clips import lib

from benchmarks.workloads import JOIN_THRESHOLD, N_SHARED, Op, Order

NAME = "CLIPS (clipspy, fixed)"
NOTE = "clipspy: lib.ReleaseFact(fact._fact) after each retract (its own release leaks)"

ORDER_TEMPLATE = """
(deftemplate order (slot order_id) (slot customer_id) (slot logged_in) (slot items)
  (slot total) (slot friday) (slot amount))
"""


def _sym(b: bool) -> clips.Symbol:
    return clips.Symbol("TRUE" if b else "FALSE")


def _retract(f: Any) -> None:
    f.retract()
    lib.ReleaseFact(f._fact)


class orders:
    def __init__(self) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        env = self.env = clips.Environment()

        def decide(oid: str, pct: int) -> None:
            out((oid, pct))

        env.define_function(decide, "decide")
        env.build(ORDER_TEMPLATE)
        for name, cond, pct in (
            ("friday", "(friday TRUE)", 0),
            ("both", "(friday FALSE) (logged_in TRUE) (items ?n&:(> ?n 2))", 30),
            ("items", "(friday FALSE) (logged_in FALSE) (items ?n&:(> ?n 2))", 30),
            ("logged_in", "(friday FALSE) (logged_in TRUE) (items ?n&:(<= ?n 2))", 20),
            ("none", "(friday FALSE) (logged_in FALSE) (items ?n&:(<= ?n 2))", 0),
        ):
            env.build(f"(defrule {name} (order (order_id ?i) {cond}) => (decide ?i {pct}))")
        self.tpl = env.find_template("order")

    def feed(self, chunk: Sequence[Order]) -> None:
        env, tpl = self.env, self.tpl
        for o in chunk:
            f = tpl.assert_fact(
                order_id=o["order_id"],
                customer_id=o["customer_id"],
                logged_in=_sym(o["logged_in"]),
                items=o["items"],
                total=o["total"],
                friday=_sym(o["friday"]),
            )
            env.run()
            _retract(f)


class joins:
    def __init__(self, customers: Sequence[dict[str, Any]]) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        env = self.env = clips.Environment()

        def decide(oid: str, tier: str) -> None:
            out((oid, str(tier)))

        env.define_function(decide, "decide")
        env.build(ORDER_TEMPLATE)
        env.build("(deftemplate customer (slot customer_id) (slot tier))")
        env.build("(deftemplate incident (slot incident_id) (slot service))")
        env.build(
            "(defrule big_order (order (order_id ?i) (customer_id ?c) "
            f"(amount ?a&:(> ?a {JOIN_THRESHOLD}))) (customer (customer_id ?c) (tier ?t)) "
            "(not (incident (service payments))) => (decide ?i ?t))"
        )
        ctpl = env.find_template("customer")
        for c in customers:
            ctpl.assert_fact(customer_id=c["customer_id"], tier=clips.Symbol(c["tier"]))
        self.tpl = env.find_template("order")
        self.itpl = env.find_template("incident")
        self.incidents: dict[str, Any] = {}

    def feed(self, chunk: Sequence[Op]) -> None:
        env, tpl = self.env, self.tpl
        for op in chunk:
            d = op.data
            if op.kind == "order":
                f = tpl.assert_fact(
                    order_id=d["order_id"], customer_id=d["customer_id"], amount=d["amount"]
                )
                env.run()
                _retract(f)
            elif op.kind == "open":
                self.incidents[d["incident_id"]] = self.itpl.assert_fact(
                    incident_id=d["incident_id"], service=clips.Symbol(d["service"])
                )
                env.run()
            else:
                _retract(self.incidents.pop(d["incident_id"]))
                env.run()


class scaling:
    def __init__(self, rules: int) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        env = self.env = clips.Environment()

        def decide(eid: int, i: int) -> None:
            out((eid, i))

        env.define_function(decide, "decide")
        env.build("(deftemplate ev (slot eid) (slot kind) (slot key))")
        env.build("(deftemplate shared (slot key))")
        for i in range(rules):
            env.build(
                f"(defrule r{i} (ev (eid ?e) (kind {i}) (key ?k)) (shared (key ?k)) "
                f"=> (decide ?e {i}))"
            )
        stpl = env.find_template("shared")
        for k in range(N_SHARED):
            stpl.assert_fact(key=k)
        self.tpl = env.find_template("ev")

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        env, tpl = self.env, self.tpl
        for eid, kind, key in chunk:
            f = tpl.assert_fact(eid=eid, kind=kind, key=key)
            env.run()
            _retract(f)


MANNERS = """
(deftemplate guest (slot name) (slot sex) (slot hobby))
(deftemplate last_seat (slot seat))
(deftemplate seating (slot seat1) (slot name1) (slot name2) (slot seat2) (slot id)
  (slot pid) (slot path_done))
(deftemplate context (slot state))
(deftemplate path (slot id) (slot name) (slot seat))
(deftemplate chosen (slot id) (slot name) (slot hobby))
(deftemplate count (slot c))

(defrule assign_first_seat
  ?f1 <- (context (state start))
  (guest (name ?n))
  ?f3 <- (count (c ?c))
  =>
  (assert (seating (seat1 1) (name1 ?n) (name2 ?n) (seat2 1) (id ?c) (pid 0) (path_done yes)))
  (assert (path (id ?c) (name ?n) (seat 1)))
  (modify ?f3 (c (+ ?c 1)))
  (modify ?f1 (state assign_seats)))

(defrule find_seating
  ?f1 <- (context (state assign_seats))
  (seating (seat2 ?seat2) (name2 ?n2) (id ?id) (path_done yes))
  (guest (name ?n2) (sex ?s1) (hobby ?h1))
  (guest (name ?g2) (sex ~?s1) (hobby ?h1))
  ?f5 <- (count (c ?c))
  (not (path (id ?id) (name ?g2)))
  (not (chosen (id ?id) (name ?g2) (hobby ?h1)))
  =>
  (assert (seating (seat1 ?seat2) (name1 ?n2) (name2 ?g2) (seat2 (+ ?seat2 1)) (id ?c)
                   (pid ?id) (path_done no)))
  (assert (path (id ?c) (name ?g2) (seat (+ ?seat2 1))))
  (assert (chosen (id ?id) (name ?g2) (hobby ?h1)))
  (modify ?f5 (c (+ ?c 1)))
  (modify ?f1 (state make_path)))

(defrule make_path
  (declare (salience 10))
  (context (state make_path))
  (seating (id ?id) (pid ?pid) (path_done no))
  (path (id ?pid) (name ?n1) (seat ?s))
  (not (path (id ?id) (name ?n1)))
  =>
  (assert (path (id ?id) (name ?n1) (seat ?s))))

(defrule path_done
  ?f1 <- (context (state make_path))
  ?f2 <- (seating (path_done no))
  =>
  (modify ?f2 (path_done yes))
  (modify ?f1 (state check_done)))

(defrule are_we_done
  (declare (salience 10))
  ?f1 <- (context (state check_done))
  (last_seat (seat ?l))
  (seating (seat2 ?l))
  =>
  (modify ?f1 (state print_results)))

(defrule continue
  ?f1 <- (context (state check_done))
  =>
  (modify ?f1 (state assign_seats)))
"""


def _constructs(text: str) -> list[str]:
    """Split CLIPS source into top-level constructs (``build`` takes one at a time)."""
    out: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                start = i
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                out.append(text[start : i + 1])
    return out


class manners:
    def __init__(self, guests: Sequence[tuple[str, str, int]], n: int) -> None:
        self.guests = guests
        self.n = n
        env = self.env = clips.Environment()
        for construct in _constructs(MANNERS):
            env.build(construct)

    def run(self) -> int:
        env = self.env
        gtpl = env.find_template("guest")
        for name, sex, hobby in self.guests:
            gtpl.assert_fact(name=clips.Symbol(name), sex=clips.Symbol(sex), hobby=hobby)
        env.find_template("last_seat").assert_fact(seat=self.n)
        env.find_template("count").assert_fact(c=1)
        env.find_template("context").assert_fact(state=clips.Symbol("start"))
        return int(env.run())

    def seating(self) -> list[str]:
        facts = [(f.template.name, dict(f)) for f in self.env.facts()]
        last = [d for t, d in facts if t == "seating" and d["seat2"] == self.n]
        if not last:
            return []
        sid = last[0]["id"]
        paths = sorted(
            (d["seat"], str(d["name"])) for t, d in facts if t == "path" and d["id"] == sid
        )
        return [name for _, name in paths]
