"""experta 1.9 on the benchmark workloads (needs ``frozendict>=2`` installed with
``--no-deps`` after it: its own pin, 1.2, does not import on Python 3.10+)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from experta import AS, MATCH, NOT, TEST, Fact, KnowledgeEngine, Rule

from benchmarks.workloads import JOIN_THRESHOLD, N_SHARED, Op, Order

NAME = "experta"


class XOrder(Fact):
    pass


class Customer(Fact):
    pass


class Incident(Fact):
    pass


class Ev(Fact):
    pass


class Shared(Fact):
    pass


def _engine(rules: dict[str, Any]) -> KnowledgeEngine:
    cls = type("Bench", (KnowledgeEngine,), rules)
    e = cls()
    e.reset()
    return e


class orders:
    def __init__(self) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append

        def rule(pct: int) -> Any:
            def action(self: Any, i: str) -> None:
                out((i, pct))

            return action

        big = TEST(lambda n: n > 2)
        small = TEST(lambda n: n <= 2)
        self.e = _engine(
            {
                "friday": Rule(XOrder(friday=True, order_id=MATCH.i))(rule(0)),
                "both": Rule(
                    XOrder(friday=False, logged_in=True, items=MATCH.n, order_id=MATCH.i), big
                )(rule(30)),
                "items": Rule(
                    XOrder(friday=False, logged_in=False, items=MATCH.n, order_id=MATCH.i), big
                )(rule(30)),
                "logged_in": Rule(
                    XOrder(friday=False, logged_in=True, items=MATCH.n, order_id=MATCH.i), small
                )(rule(20)),
                "none": Rule(
                    XOrder(friday=False, logged_in=False, items=MATCH.n, order_id=MATCH.i), small
                )(rule(0)),
            }
        )

    def feed(self, chunk: Sequence[Order]) -> None:
        e = self.e
        for o in chunk:
            f = e.declare(XOrder(**o))
            e.run()
            e.retract(f)


class joins:
    def __init__(self, customers: Sequence[dict[str, Any]]) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append

        def big_order(self: Any, i: str, t: str) -> None:
            out((i, t))

        self.e = _engine(
            {
                "big_order": Rule(
                    XOrder(order_id=MATCH.i, customer_id=MATCH.c, amount=MATCH.a),
                    TEST(lambda a: a > JOIN_THRESHOLD),
                    Customer(customer_id=MATCH.c, tier=MATCH.t),
                    NOT(Incident(service="payments")),
                )(big_order)
            }
        )
        for c in customers:
            self.e.declare(Customer(**c))
        self.incidents: dict[str, Any] = {}

    def feed(self, chunk: Sequence[Op]) -> None:
        e = self.e
        for op in chunk:
            if op.kind == "order":
                f = e.declare(XOrder(**op.data))
                e.run()
                e.retract(f)
            elif op.kind == "open":
                self.incidents[op.data["incident_id"]] = e.declare(Incident(**op.data))
                e.run()
            else:
                e.retract(self.incidents.pop(op.data["incident_id"]))
                e.run()


class scaling:
    def __init__(self, rules: int) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append

        def make(i: int) -> Any:
            def action(self: Any, e: int) -> None:
                out((e, i))

            return action

        self.e = _engine(
            {
                f"r{i}": Rule(Ev(kind=i, key=MATCH.k, eid=MATCH.e), Shared(key=MATCH.k))(make(i))
                for i in range(rules)
            }
        )
        for k in range(N_SHARED):
            self.e.declare(Shared(key=k))

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        e = self.e
        for eid, kind, key in chunk:
            f = e.declare(Ev(eid=eid, kind=kind, key=key))
            e.run()
            e.retract(f)


class Guest(Fact):
    pass


class LastSeat(Fact):
    pass


class Context(Fact):
    pass


class Count(Fact):
    pass


class Seating(Fact):
    pass


class Path(Fact):
    pass


class Chosen(Fact):
    pass


class MannersEngine(KnowledgeEngine):
    """The OPS5 Miss Manners rules (saliences as in the other engines' versions).

    experta's ``run()`` returns no count, so each action counts its firing.
    """

    fired = 0

    @Rule(AS.f1 << Context(state="start"), Guest(name=MATCH.n), AS.f3 << Count(c=MATCH.c))
    def assign_first_seat(self, f1: Any, f3: Any, n: str, c: int) -> None:
        self.fired += 1
        self.declare(Seating(seat1=1, name1=n, name2=n, seat2=1, id=c, pid=0, path_done=True))
        self.declare(Path(id=c, name=n, seat=1))
        self.modify(f3, c=c + 1)
        self.modify(f1, state="assign_seats")

    @Rule(
        AS.f1 << Context(state="assign_seats"),
        Seating(seat2=MATCH.seat2, name2=MATCH.n2, id=MATCH.id, path_done=True),
        Guest(name=MATCH.n2, sex=MATCH.s1, hobby=MATCH.h1),
        Guest(name=MATCH.g2, sex=MATCH.s2, hobby=MATCH.h1),
        TEST(lambda s1, s2: s1 != s2),
        AS.f5 << Count(c=MATCH.c),
        NOT(Path(id=MATCH.id, name=MATCH.g2)),
        NOT(Chosen(id=MATCH.id, name=MATCH.g2, hobby=MATCH.h1)),
    )
    def find_seating(
        self, f1: Any, f5: Any, seat2: int, n2: str, id: int, g2: str, h1: int, c: int, **_: Any
    ) -> None:
        self.fired += 1
        self.declare(
            Seating(seat1=seat2, name1=n2, name2=g2, seat2=seat2 + 1, id=c, pid=id, path_done=False)
        )
        self.declare(Path(id=c, name=g2, seat=seat2 + 1))
        self.declare(Chosen(id=id, name=g2, hobby=h1))
        self.modify(f5, c=c + 1)
        self.modify(f1, state="make_path")

    @Rule(
        Context(state="make_path"),
        Seating(id=MATCH.id, pid=MATCH.pid, path_done=False),
        Path(id=MATCH.pid, name=MATCH.n1, seat=MATCH.s),
        NOT(Path(id=MATCH.id, name=MATCH.n1)),
        salience=10,
    )
    def make_path(self, id: int, n1: str, s: int, **_: Any) -> None:
        self.fired += 1
        self.declare(Path(id=id, name=n1, seat=s))

    @Rule(AS.f1 << Context(state="make_path"), AS.f2 << Seating(path_done=False))
    def path_done(self, f1: Any, f2: Any) -> None:
        self.fired += 1
        self.modify(f2, path_done=True)
        self.modify(f1, state="check_done")

    @Rule(
        AS.f1 << Context(state="check_done"),
        LastSeat(seat=MATCH.l),
        Seating(seat2=MATCH.l),
        salience=10,
    )
    def are_we_done(self, f1: Any, **_: Any) -> None:
        self.fired += 1
        self.modify(f1, state="print_results")

    @Rule(AS.f1 << Context(state="check_done"))
    def continue_(self, f1: Any) -> None:
        self.fired += 1
        self.modify(f1, state="assign_seats")


class manners:
    def __init__(self, guests: Sequence[tuple[str, str, int]], n: int) -> None:
        self.guests = guests
        self.n = n
        self.e = MannersEngine()
        self.e.reset()

    def run(self) -> int:
        e = self.e
        for name, sex, hobby in self.guests:
            e.declare(Guest(name=name, sex=sex, hobby=hobby))
        e.declare(LastSeat(seat=self.n))
        e.declare(Count(c=1))
        e.declare(Context(state="start"))
        e.run()
        return e.fired

    def seating(self) -> list[str]:
        facts = list(self.e.facts.values())
        last = [f for f in facts if isinstance(f, Seating) and f["seat2"] == self.n]
        if not last:
            return []
        sid = last[0]["id"]
        paths = sorted(
            (f["seat"], f["name"]) for f in facts if isinstance(f, Path) and f["id"] == sid
        )
        return [name for _, name in paths]
