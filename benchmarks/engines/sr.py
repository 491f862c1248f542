"""streamrules' engine (``streamrules.rete``) on the benchmark workloads, written with its
public authoring API as a rule author would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.workloads import JOIN_THRESHOLD, N_SHARED, Op, Order
from streamrules.rete import NOT, Fact, Filter, Production, ReteNetwork, V

NAME = "streamrules"


class SOrder(Fact):
    pass


class Customer(Fact):
    pass


class Incident(Fact):
    pass


class Ev(Fact):
    pass


class Shared(Fact):
    pass


class orders:
    """The discount rules as five mutually exclusive productions: one decision per order."""

    def __init__(self) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        net = self.net = ReteNetwork()

        @Production(SOrder(friday=True, order_id=V("i")))
        def friday(i: str) -> None:
            out((i, 0))

        @Production(
            SOrder(friday=False, logged_in=True, items=V("n"), order_id=V("i"))
            & Filter(lambda n: n > 2)
        )
        def both(i: str) -> None:
            out((i, 30))

        @Production(
            SOrder(friday=False, logged_in=False, items=V("n"), order_id=V("i"))
            & Filter(lambda n: n > 2)
        )
        def items(i: str) -> None:
            out((i, 30))

        @Production(
            SOrder(friday=False, logged_in=True, items=V("n"), order_id=V("i"))
            & Filter(lambda n: n <= 2)
        )
        def logged_in(i: str) -> None:
            out((i, 20))

        @Production(
            SOrder(friday=False, logged_in=False, items=V("n"), order_id=V("i"))
            & Filter(lambda n: n <= 2)
        )
        def none(i: str) -> None:
            out((i, 0))

        for p in (friday, both, items, logged_in, none):
            net.add_production(p)

    def feed(self, chunk: Sequence[Order]) -> None:
        net = self.net
        for o in chunk:
            f = SOrder(**o)
            net.add_fact(f)
            net.run()
            net.remove_fact(f)


class joins:
    def __init__(self, customers: Sequence[dict[str, Any]]) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        net = self.net = ReteNetwork()

        @Production(
            SOrder(order_id=V("i"), customer_id=V("c"), amount=V("a"))
            & Filter(lambda a: a > JOIN_THRESHOLD)
            & Customer(customer_id=V("c"), tier=V("t"))
            & NOT(Incident(service="payments"))
        )
        def big_order(i: str, t: str) -> None:
            out((i, t))

        net.add_production(big_order)
        for c in customers:
            net.add_fact(Customer(**c))
        self.incidents: dict[str, Incident] = {}

    def feed(self, chunk: Sequence[Op]) -> None:
        net = self.net
        incidents = self.incidents
        for op in chunk:
            if op.kind == "order":
                f = SOrder(**op.data)
                net.add_fact(f)
                net.run()
                net.remove_fact(f)
            elif op.kind == "open":
                inc = incidents[op.data["incident_id"]] = Incident(**op.data)
                net.add_fact(inc)
                net.run()
            else:
                net.remove_fact(incidents.pop(op.data["incident_id"]))
                net.run()


class scaling:
    def __init__(self, rules: int) -> None:
        self.decisions: list[tuple[Any, ...]] = []
        out = self.decisions.append
        net = self.net = ReteNetwork()
        for i in range(rules):

            def action(e: int, i: int = i) -> None:
                out((e, i))

            p = Production(Ev(kind=i, key=V("k"), eid=V("e")) & Shared(key=V("k")), name=f"r{i}")
            net.add_production(p(action))
        for k in range(N_SHARED):
            net.add_fact(Shared(key=k))

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        net = self.net
        for eid, kind, key in chunk:
            f = Ev(eid=eid, kind=kind, key=key)
            net.add_fact(f)
            net.run()
            net.remove_fact(f)


# -- Miss Manners ----------------------------------------------------------------------


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


class manners:
    """The OPS5 Miss Manners rules; saliences make explicit the conflict resolution the
    classic relies on (make_path before path_done, are_we_done before continue)."""

    def __init__(self, guests: Sequence[tuple[str, str, int]], n: int) -> None:
        self.guests = guests
        self.n = n
        net = self.net = ReteNetwork()

        @Production(
            V("f1") << Context(state="start") & Guest(name=V("n")) & V("f3") << Count(c=V("c"))
        )
        def assign_first_seat(f1: Fact, f3: Fact, n: str, c: int, net: ReteNetwork) -> None:
            net.add_fact(Seating(seat1=1, name1=n, name2=n, seat2=1, id=c, pid=0, path_done=True))
            net.add_fact(Path(id=c, name=n, seat=1))
            f3["c"] = c + 1
            net.update_fact(f3)
            f1["state"] = "assign_seats"
            net.update_fact(f1)

        @Production(
            V("f1") << Context(state="assign_seats")
            & Seating(seat2=V("seat2"), name2=V("n2"), id=V("id"), path_done=True)
            & Guest(name=V("n2"), sex=V("s1"), hobby=V("h1"))
            & Guest(name=V("g2"), sex=V("s2"), hobby=V("h1"))
            & Filter(lambda s1, s2: s1 != s2)
            & V("f5") << Count(c=V("c"))
            & NOT(Path(id=V("id"), name=V("g2")))
            & NOT(Chosen(id=V("id"), name=V("g2"), hobby=V("h1")))
        )
        def find_seating(
            f1: Fact, f5: Fact, seat2: int, n2: str, id: int, g2: str, h1: int, c: int,
            net: ReteNetwork,
        ) -> None:  # fmt: skip
            net.add_fact(
                Seating(
                    seat1=seat2, name1=n2, name2=g2, seat2=seat2 + 1, id=c, pid=id,
                    path_done=False,
                )
            )  # fmt: skip
            net.add_fact(Path(id=c, name=g2, seat=seat2 + 1))
            net.add_fact(Chosen(id=id, name=g2, hobby=h1))
            f5["c"] = c + 1
            net.update_fact(f5)
            f1["state"] = "make_path"
            net.update_fact(f1)

        @Production(
            Context(state="make_path")
            & Seating(id=V("id"), pid=V("pid"), path_done=False)
            & Path(id=V("pid"), name=V("n1"), seat=V("s"))
            & NOT(Path(id=V("id"), name=V("n1"))),
            salience=10,
        )
        def make_path(id: int, n1: str, s: int, net: ReteNetwork) -> None:
            net.add_fact(Path(id=id, name=n1, seat=s))

        @Production(V("f1") << Context(state="make_path") & V("f2") << Seating(path_done=False))
        def path_done(f1: Fact, f2: Fact, net: ReteNetwork) -> None:
            f2["path_done"] = True
            net.update_fact(f2)
            f1["state"] = "check_done"
            net.update_fact(f1)

        @Production(
            V("f1") << Context(state="check_done") & LastSeat(seat=V("l")) & Seating(seat2=V("l")),
            salience=10,
        )
        def are_we_done(f1: Fact, net: ReteNetwork) -> None:
            f1["state"] = "print_results"
            net.update_fact(f1)

        @Production(V("f1") << Context(state="check_done"))
        def continue_(f1: Fact, net: ReteNetwork) -> None:
            f1["state"] = "assign_seats"
            net.update_fact(f1)

        for p in (assign_first_seat, find_seating, make_path, path_done, are_we_done, continue_):
            net.add_production(p)

    def run(self) -> int:
        net = self.net
        for name, sex, hobby in self.guests:
            net.add_fact(Guest(name=name, sex=sex, hobby=hobby))
        net.add_fact(LastSeat(seat=self.n))
        net.add_fact(Count(c=1))
        net.add_fact(Context(state="start"))
        return net.run()

    def seating(self) -> list[str]:
        facts = self.net.facts
        last = [f for f in facts if isinstance(f, Seating) and f["seat2"] == self.n]
        if not last:
            return []
        sid = last[0]["id"]
        paths = sorted(
            (f["seat"], f["name"]) for f in facts if isinstance(f, Path) and f["id"] == sid
        )
        return [name for _, name in paths]
