"""Engine behaviour: agenda order, refraction, modify, salience, production removal,
unlinking, listeners, inject, DOT export and errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from streamrules.errors import RuleError
from streamrules.rete import (
    EXISTS,
    NOT,
    Bind,
    Count,
    Fact,
    Filter,
    Listener,
    Match,
    Production,
    ReteNetwork,
    V,
)
from streamrules.rete.beta import BetaMemory, JoinNode, PNode

if TYPE_CHECKING:
    from streamrules.rete.fact import WME
    from streamrules.rete.tokens import Token


class Order(Fact):
    pass


class Customer(Fact):
    pass


def rule(cond: Any, name: str, salience: int = 0, log: list[Any] | None = None) -> Production:
    @Production(cond, salience=salience, name=name)
    def action(**kw: Any) -> str:
        if log is not None:
            log.append((name, {k: v for k, v in kw.items() if k != "net"}))
        return name

    # An action taking **kw: Any is ambiguous to the decorator's overloads.
    assert isinstance(action, Production)
    return action


def token_dict(w: WME) -> dict[Token, None]:
    """``w.tokens`` where a test takes its ``len()``: the dict of them (a single token or
    ``None`` has no length)."""
    ts = w.tokens
    assert isinstance(ts, dict), ts
    return ts


# -- agenda --------------------------------------------------------------------------------


def test_agenda_orders_by_salience_then_recency_then_production_order() -> None:
    log: list[Any] = []
    net = ReteNetwork()
    net.add_production(rule(Order(id=V("o")), "first", log=log))
    net.add_production(rule(Order(id=V("o")), "second", log=log))
    net.add_production(rule(Order(id=V("o")), "urgent", salience=5, log=log))
    net.add_fact(Order(id=1))
    net.add_fact(Order(id=2))
    net.run()
    assert [(n, kw["o"]) for n, kw in log] == [
        ("urgent", 2),
        ("urgent", 1),
        ("first", 2),
        ("second", 2),
        ("first", 1),
        ("second", 1),
    ]


def test_matches_are_listed_in_agenda_order() -> None:
    net = ReteNetwork()
    net.add_production(rule(Order(id=V("o")), "low", salience=-1))
    net.add_production(rule(Order(id=V("o")), "high", salience=1))
    net.add_fact(Order(id=1))
    net.add_fact(Order(id=2))
    got = [(m.production.name, m.bindings["o"]) for m in net.matches]
    assert got == [("high", 2), ("high", 1), ("low", 2), ("low", 1)]
    assert next(net.matches).production.salience == 1


def test_agenda_is_deterministic_across_runs() -> None:
    def once() -> list[Any]:
        log: list[Any] = []
        net = ReteNetwork()
        net.add_production(rule(Order(c=V("c")) & Customer(id=V("c")), "j", log=log))
        for i in range(5):
            net.add_fact(Customer(id=i % 2))
            net.add_fact(Order(c=i % 2, n=i))
        net.run()
        return log

    assert once() == once()


# -- refraction and modify ----------------------------------------------------------------


def test_refraction_fires_once_and_again_after_recreation() -> None:
    log: list[Any] = []
    net = ReteNetwork()
    net.add_production(rule(Order(id=V("o")), "r", log=log))
    o = Order(id=1)
    net.add_fact(o)
    assert net.run() == 1
    assert net.run() == 0
    assert len(list(net.matches)) == 1 and not list(net.new_matches)
    net.remove_fact(o)
    net.add_fact(o)
    assert net.run() == 1
    assert len(log) == 2


def test_modify_of_an_untested_attribute_keeps_matches_and_does_not_refire() -> None:
    log: list[Any] = []
    net = ReteNetwork()
    net.add_production(
        rule(V("o") << Order(total=V("t")) & Filter(lambda t: t > 10), "big", log=log)
    )
    net.add_production(rule(Order(status="new"), "new", log=log))
    o = Order(total=50, status="new", note="a")
    net.add_fact(o)
    net.run()
    assert len(log) == 2
    o["note"] = "b"
    net.update_fact(o)
    assert net.run() == 0
    assert len(list(net.matches)) == 2
    o["total"] = 60  # tested: the matches using it are re-created and fire again
    net.update_fact(o)
    assert [m.production.name for m in net.new_matches] == ["big"]
    o["status"] = "old"
    net.update_fact(o)
    assert [m.production.name for m in net.matches] == ["big"]


def test_filter_on_a_whole_fact_sees_its_modifications() -> None:
    net = ReteNetwork()
    net.add_production(rule(V("o") << Order() & Filter(lambda o: o.get("vip", False)), "vip"))
    o = Order(id=1)
    net.add_fact(o)
    assert list(net.matches) == []
    o["vip"] = True
    net.update_fact(o)
    assert len(list(net.matches)) == 1


def test_facts_are_snapshots() -> None:
    net = ReteNetwork()
    net.add_production(rule(Order(status="new"), "new"))
    o = Order(status="new")
    net.add_fact(o)
    o["status"] = "done"  # not yet told
    assert len(list(net.matches)) == 1
    net.update_fact(o)
    assert list(net.matches) == []
    assert set(o) == {"status"}  # nothing written into the user's fact
    assert o in net and net.fact_count == 1 and net.facts == [o]


# -- salience / errors in productions ------------------------------------------------------


def test_salience_must_be_an_int() -> None:
    with pytest.raises(RuleError, match="salience"):
        Production(Order(), salience="high")  # type: ignore[arg-type]


def test_filter_with_unbound_variable_is_refused() -> None:
    p = rule(Filter(lambda x: x > 1) & Order(x=V("x")), "early")
    net = ReteNetwork()
    with pytest.raises(RuleError) as info:
        net.add_production(p)
    msg = str(info.value)
    assert "'x'" in msg and "early" in msg and "Filter" in msg
    assert net.stats()["beta_nodes"] == 1  # nothing left behind


def test_bind_with_unbound_variable_is_refused() -> None:
    p = rule(Order(x=V("x")) & Bind(lambda y: y + 1, V("z")), "b")
    with pytest.raises(RuleError, match="'y'"):
        ReteNetwork().add_production(p)


def test_fact_holding_a_variable_is_refused() -> None:
    net = ReteNetwork()
    with pytest.raises(RuleError, match="variable"):
        net.add_fact(Order(id=V("x")))
    assert net.facts == []


def test_unknown_fact_operations_are_refused() -> None:
    net = ReteNetwork()
    with pytest.raises(RuleError, match="not in the network"):
        net.remove_fact(Order(id=1))
    with pytest.raises(RuleError, match="not in the network"):
        net.update_fact(Order(id=1))
    with pytest.raises(RuleError, match="only allowed inside an action"):
        net.add_fact(Order(id=1), logical=True)


def test_action_error_names_the_production_and_network_stays_consistent() -> None:
    calls: list[int] = []

    @Production(Order(id=V("o")))
    def fragile(o: int) -> None:
        calls.append(o)
        if o == 2:
            raise ValueError("boom")

    net = ReteNetwork()
    net.add_production(fragile)
    for i in (1, 2, 3):
        net.add_fact(Order(id=i))
    with pytest.raises(RuleError) as info:
        net.run()
    assert info.value.production == "fragile"
    assert isinstance(info.value.__cause__, ValueError)
    assert calls == [3, 2]
    assert len(list(net.matches)) == 3
    assert net.run() == 1  # the failed match does not fire again; the rest continue
    assert calls == [3, 2, 1]
    net.add_fact(Order(id=4))
    assert net.run() == 1


def test_filter_error_becomes_rule_error_after_the_change() -> None:
    net = ReteNetwork()
    net.add_production(rule(Order(x=V("x")) & Filter(lambda x: 1 // x > 0), "div"))
    net.add_fact(Order(x=1))
    with pytest.raises(RuleError) as info:
        net.add_fact(Order(x=0))
    assert info.value.production == "div" and "ZeroDivisionError" in str(info.value)
    assert len(net.facts) == 2 and len(list(net.matches)) == 1  # consistent: test counted False


def test_missing_action_argument() -> None:
    @Production(Order(id=V("o")))
    def needs(o: int, ctx: Any) -> None:
        return None

    net = ReteNetwork()
    net.add_production(needs)
    net.add_fact(Order(id=1))
    with pytest.raises(RuleError, match="'ctx'"):
        net.run()
    net.inject("ctx", object())
    net.add_fact(Order(id=2))
    assert net.run() == 1


def test_inject_passes_extra_arguments() -> None:
    seen: list[Any] = []

    @Production(Order(id=V("o")))
    def act(o: int, ctx: dict[str, int], net: ReteNetwork) -> None:
        seen.append((o, ctx["k"], isinstance(net, ReteNetwork)))

    net = ReteNetwork()
    net.inject("ctx", {"k": 7})
    net.add_production(act)
    net.add_fact(Order(id=1))
    net.run()
    assert seen == [(1, 7, True)]


# -- structure: removal, sharing, unlinking -------------------------------------------------


def test_remove_production_frees_its_nodes() -> None:
    net = ReteNetwork()
    base = rule(Order(c=V("c")) & Customer(id=V("c")), "base")
    net.add_production(base)
    net.add_fact(Order(c=1))
    net.add_fact(Customer(id=1))
    before = dict(net.stats())
    extra = rule(
        Order(c=V("c"))
        & Customer(id=V("c"))
        & NOT(Order(c=V("c"), big=True) & Filter(lambda c: c > 0))
        & EXISTS(Customer(vip=True))
        & Count(Order(c=V("c")), into="n"),
        "extra",
    )
    net.add_production(extra)
    assert net.stats()["beta_nodes"] > before["beta_nodes"]
    net.remove_production(extra)
    assert dict(net.stats()) == before
    net.remove_production(base)
    assert net.stats()["beta_nodes"] == 1 and net.stats()["alpha_memories"] == 0


def test_nodes_are_shared_between_productions() -> None:
    net = ReteNetwork()
    net.add_production(rule(Order(c=V("c")) & Customer(id=V("c")), "a"))
    n1 = net.stats()["beta_nodes"]
    net.add_production(rule(Order(c=V("x")) & Customer(id=V("x")), "b"))
    assert net.stats()["beta_nodes"] == n1 + 1  # only the production node is new
    assert net.stats()["alpha_memories"] == 2


def test_join_nodes_are_unlinked_while_a_side_is_empty() -> None:
    net = ReteNetwork()
    prods = [rule(Order(kind=i, c=V("c")) & Customer(id=V("c")), f"r{i}") for i in range(50)]
    for p in prods:
        net.add_production(p)
    cust = next(a for a in net.alpha_memories() if a.cls is Customer)
    # No orders: every Customer join is right-unlinked; a customer visits none of them.
    assert len(cust.successors) == 0
    net.add_fact(Customer(id=1))
    o = Order(kind=7, c=1)
    net.add_fact(o)
    assert len(cust.successors) == 1
    assert [m.production.name for m in net.matches] == ["r7"]
    net.remove_fact(o)
    assert len(cust.successors) == 0
    # Left unlinking: with no Customer, the Customer joins hang off no beta memory, so an
    # order's partial match activates none of them.
    by_kind = {j.amem.consts: j for j in net.root.children if isinstance(j, JoinNode) and j.amem}
    bm = by_kind[(("kind", 3),)].kids[0]
    assert isinstance(bm, BetaMemory) and len(bm.children) == 1
    net.remove_fact(net.facts[0])
    assert len(bm.children) == 0
    net.add_fact(Order(kind=3, c=2))
    assert len(bm.items) == 1 and len(bm.children) == 0
    net.add_fact(Customer(id=2))
    assert len(bm.children) == 1
    assert [m.production.name for m in net.matches] == ["r3"]
    # The joins under the root are never unlinked: the root's one token is never
    # activated again, so unlinking them would only cost work.
    assert len(net.root.children) == 50


def test_a_beta_memory_is_indexed_only_while_large() -> None:
    from streamrules.rete.beta import SMALL

    net = ReteNetwork()
    net.add_production(rule(Order(c=V("c")) & Customer(id=V("c")), "r"))
    join = next(j for j in net.root.children if isinstance(j, JoinNode))
    bm = join.kids[0]
    assert isinstance(bm, BetaMemory)
    (ix,) = bm.indexes.values()
    orders = [Order(c=i % 3, n=i) for i in range(SMALL + 4)]
    for o in orders[:SMALL]:
        net.add_fact(o)
    assert not bm.indexed and not ix.map  # small: scanned
    net.add_fact(Customer(id=1))
    assert sorted(m.facts[0]["n"] for m in net.matches) == [n for n in range(SMALL) if n % 3 == 1]
    for o in orders[SMALL:]:
        net.add_fact(o)
    assert bm.indexed and sum(len(b) for b in ix.map.values()) == len(orders)
    net.add_fact(Customer(id=2))
    found = sorted((m.facts[1]["id"], m.facts[0]["n"]) for m in net.matches)
    assert found == sorted((o["c"], o["n"]) for o in orders if o["c"] in (1, 2))
    for o in orders[1:]:
        net.remove_fact(o)
    assert bm.indexed and sum(len(b) for b in ix.map.values()) == 1  # kept while non-empty
    net.remove_fact(orders[0])
    assert not bm.indexed and not ix.map
    net.add_fact(Order(c=2, n=99))
    assert not ix.map and [m.facts[0]["n"] for m in net.matches] == [99]


def test_alpha_dispatch_reaches_only_matching_memories() -> None:
    net = ReteNetwork()
    for i in range(200):
        net.add_production(rule(Order(kind=i), f"r{i}"))
    w_amems = net.alpha.dispatch(Order, {"kind": 5})
    assert len(w_amems) == 1 and w_amems[0].consts == (("kind", 5),)
    assert not net.alpha.dispatch(Customer, {"kind": 5})


# -- listeners, logical, dot -----------------------------------------------------------------


class Recorder(Listener):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_assert(self, fact: Fact) -> None:
        self.events.append(("assert", dict(fact)))

    def on_retract(self, fact: Fact) -> None:
        self.events.append(("retract", dict(fact)))

    def on_modify(self, fact: Fact) -> None:
        self.events.append(("modify", dict(fact)))

    def on_activation_added(self, match: Match) -> None:
        self.events.append(("added", match.production.name))

    def on_activation_removed(self, match: Match) -> None:
        self.events.append(("removed", match.production.name))

    def on_fire(self, match: Match, result: Any) -> None:
        self.events.append(("fire", result))


def test_listeners_see_everything() -> None:
    net = ReteNetwork()
    rec = Recorder()
    net.add_listener(rec)
    net.add_production(rule(Order(id=V("o"), ok=True), "r"))
    o = Order(id=1, ok=True)
    net.add_fact(o)
    net.run()
    p = Order(id=2, ok=True)
    net.add_fact(p)
    p["ok"] = False
    net.update_fact(p)
    net.remove_fact(o)
    assert rec.events == [
        ("assert", {"id": 1, "ok": True}),
        ("added", "r"),
        ("fire", "r"),
        ("assert", {"id": 2, "ok": True}),
        ("added", "r"),
        ("removed", "r"),
        ("modify", {"id": 2, "ok": False}),
        ("retract", {"id": 1, "ok": True}),
    ]


def test_listener_cannot_change_the_network() -> None:
    net = ReteNetwork()

    class Meddler(Listener):
        def on_activation_added(self, match: Match) -> None:
            net.add_fact(Fact(x=1))

    net.add_listener(Meddler())
    net.add_production(rule(Order(), "r"))
    with pytest.raises(RuleError, match="while it is matching"):
        net.add_fact(Order())


def test_logical_fact_goes_with_its_support() -> None:
    class Alarm(Fact):
        pass

    @Production(V("o") << Order(total=V("t")) & Filter(lambda t: t > 100))
    def alarm(net: ReteNetwork, o: Order) -> None:
        net.add_fact(Alarm(order=o["id"]), logical=True)

    net = ReteNetwork()
    net.add_production(alarm)
    o = Order(id=1, total=500)
    net.add_fact(o)
    net.run()
    assert [dict(f) for f in net.facts if isinstance(f, Alarm)] == [{"order": 1}]
    o["total"] = 50
    net.update_fact(o)
    assert [f for f in net.facts if isinstance(f, Alarm)] == []


def test_to_dot_shows_nodes_and_sizes() -> None:
    net = ReteNetwork()
    net.add_production(rule(Order(c=V("c")) & Customer(id=V("c")) & ~Fact(stop=True), "r"))
    net.add_fact(Order(c=1))
    net.add_fact(Customer(id=1))
    dot = net.to_dot()
    assert dot.startswith("digraph rete {") and dot.rstrip().endswith("}")
    assert "production r" in dot
    assert "1 facts" in dot and "1 tokens" in dot
    assert "not Fact(stop=True)" in dot


def test_a_failing_listener_does_not_break_the_network() -> None:
    class Broken(Listener):
        def on_activation_added(self, match: Match) -> None:
            raise KeyError("oops")

    net = ReteNetwork()
    net.add_listener(Broken())
    net.add_production(rule(Order(id=V("o")), "r"))
    with pytest.raises(RuleError, match="listener Broken raised KeyError"):
        net.add_fact(Order(id=1))
    assert len(list(net.matches)) == 1 and net.run() == 1


def test_state_does_not_grow_over_a_stream() -> None:
    """Per-event cost cannot creep up if nothing accumulates: after many insert / fire /
    retract cycles every memory, index and the agenda are back to their first size."""
    net = ReteNetwork()
    net.add_production(
        rule(
            V("o") << Order(c=V("c"), total=V("t"))
            & Filter(lambda t: t > 5)
            & Customer(id=V("c"))
            & NOT(Fact(stop=V("c")))
            & Count(Order(c=V("c")), into="n"),
            "r",
        )
    )
    for i in range(10):
        net.add_fact(Customer(id=i))

    def sizes() -> tuple[Any, ...]:
        mems = tuple(n.memory_size() for n in net.nodes())
        amems = tuple(
            (len(a.items), tuple(len(ix.map) for ix in a.indexes.values()))
            for a in net.alpha_memories()
        )
        agenda = len(net.agenda.heap) + len(net.agenda.fresh)
        return mems, amems, agenda

    def burst(k: int) -> None:
        live = []
        for i in range(k):
            o = Order(c=i % 12, total=i % 10)
            net.add_fact(o)
            live.append(o)
            if i % 7 == 0:
                stop = Fact(stop=i % 12)
                net.add_fact(stop)
                net.remove_fact(stop)
            net.run(1)
        for o in live:
            net.remove_fact(o)
        net.run()

    burst(50)
    first = sizes()
    burst(2000)
    assert sizes() == first
    assert sum(len(token_dict(w)) for w in net._wmes.values()) == sum(
        1 for n in net.nodes() for t in getattr(n, "items", ()) if t.wme is not None
    )


class Ctl(Fact):
    pass


def test_unconnected_pattern_is_joined_last_and_matches_keep_written_order() -> None:
    """A control fact that shares no variable (joined last): toggling it rebuilds only the
    complete matches, not the partial ones; the match set and Match.facts are as written."""
    net = ReteNetwork()
    net.add_production(
        rule(
            V("k") << Ctl(state="go") & V("o") << Order(c=V("c")) & V("u") << Customer(id=V("c")),
            "gated",
        )
    )
    for i in range(5):
        net.add_fact(Customer(id=i))
        net.add_fact(Order(c=i))
    sizes = [n.memory_size() for n in net.nodes() if n.kind == "memory"]
    # Order x Customer is kept although no Ctl fact exists yet.
    assert 5 in sizes
    assert list(net.matches) == []
    k = Ctl(state="go")
    net.add_fact(k)
    ms = list(net.matches)
    assert len(ms) == 5
    for m in ms:
        assert [type(f) for f in m.facts] == [Ctl, Order, Customer]
        assert m.facts[1]["c"] == m.facts[2]["id"] == m.bindings["c"]
    k["state"] = "stop"
    net.update_fact(k)
    assert list(net.matches) == []
    assert 5 in [n.memory_size() for n in net.nodes() if n.kind == "memory"]


def test_join_order_moves_only_patterns_sharing_nothing() -> None:
    from streamrules.rete.compiler import dnf, join_order

    def order(cond: Any) -> list[int]:
        return join_order(dnf(cond, "p")[0])

    # Ctl shares nothing: last. Count's c is used by the Filter: stays.
    assert order(Ctl(s=1) & Order(c=V("c")) & Customer(id=V("c"))) == [1, 2, 0]
    assert order(Fact(n=V("n")) & Filter(lambda n: n > 1) & Order(c=V("c"))) == [0, 1, 2]
    # A NOT that uses the variable connects it (Ctl stays, Order goes last).
    assert order(Ctl(s=V("s")) & Order(c=V("c")) & NOT(Customer(id=V("s")))) == [0, 2, 1]
    # A filter of nothing keeps everything in place (it runs where it stands).
    assert order(Ctl(s=1) & Order(c=V("c")) & Filter(lambda: True)) == [0, 1, 2]
    # Several unconnected patterns keep their relative order.
    assert order(Ctl(s=1) & Order(c=V("c")) & Fact(a=2) & Customer(id=V("c"))) == [1, 3, 0, 2]


class Counter(Fact):
    pass


def test_unconnected_tail_is_one_cross_join_with_one_token_per_match() -> None:
    from streamrules.rete.cross import CrossJoinNode

    net = ReteNetwork()
    fired: list[tuple[int, int]] = []

    @Production(
        Order(c=V("c")) & V("k") << Ctl(state="go") & Customer(id=V("c")) & Counter(n=V("n"))
    )
    def r(c: int, n: int, k: Fact) -> None:
        fired.append((c, n))

    net.add_production(r)
    crosses = [x for x in net.nodes() if isinstance(x, CrossJoinNode)]
    assert len(crosses) == 1 and crosses[0].parent is not None
    for i in range(3):
        net.add_fact(Customer(id=i))
        net.add_fact(Order(c=i))
    k, cnt = Ctl(state="go"), Counter(n=1)
    net.add_fact(k)
    assert list(net.matches) == []  # no Counter yet
    net.add_fact(cnt)
    ms = list(net.matches)
    assert len(ms) == 3
    # Match.facts in written order; no memory level for the tail: one token per match,
    # below the Order x Customer memory, held by both tail facts.
    assert [type(f) for f in ms[0].facts] == [Order, Ctl, Customer, Counter]
    (pnode,) = crosses[0].all_children
    assert pnode.kind == "production" and crosses[0].parent.memory_size() == 3
    assert len(token_dict(net._wmes[id(k)])) == len(token_dict(net._wmes[id(cnt)])) == 3
    assert net.run() == 3
    assert sorted(fired) == [(0, 1), (1, 1), (2, 1)]
    # A modify of a value the rule binds renews the matches (they fire again) ...
    cnt["n"] = 2
    net.update_fact(cnt)
    assert sorted(m.bindings["n"] for m in net.new_matches) == [2, 2, 2]
    # ... one of an attribute nothing reads leaves them alone ...
    net.run()
    cnt["other"] = 1
    net.update_fact(cnt)
    assert list(net.new_matches) == [] and len(list(net.matches)) == 3
    # ... and a control fact leaving its memory takes them all.
    k["state"] = "stop"
    net.update_fact(k)
    assert list(net.matches) == []
    k["state"] = "go"
    net.update_fact(k)
    assert len(list(net.new_matches)) == 3
    net.remove_fact(cnt)
    assert list(net.matches) == []
    net.remove_production(r)
    assert net.stats()["beta_nodes"] == 1 and net.stats()["alpha_memories"] == 0


def test_unconnected_tail_of_one_type_stays_joins() -> None:
    from streamrules.rete.cross import CrossJoinNode

    net = ReteNetwork()

    @Production(Order(c=V("c")) & Customer(id=V("c")) & Ctl(state="go") & Ctl(mode=V("m")))
    def r(m: int) -> None:
        pass

    net.add_production(r)
    assert not any(isinstance(x, CrossJoinNode) for x in net.nodes())
    net.add_fact(Order(c=1))
    net.add_fact(Customer(id=1))
    net.add_fact(Ctl(state="go", mode=3))
    assert [m.bindings["m"] for m in net.matches] == [3]


def test_a_retracted_fact_leaves_no_cyclic_garbage() -> None:
    # A retracted fact must be freed by reference counting: a long-running stream keeps
    # tens of thousands of facts live, and garbage that waits for full collections of the
    # cyclic GC grows the process and makes each of those collections walk them all.
    import gc

    net = ReteNetwork()

    @Production(Fact(kind="order", n=V("n")) & Fact(kind="limit", n=V("m")))
    def r(n: int, m: int) -> None:
        pass

    net.add_production(r)
    limit = Fact(kind="limit", n=1)
    net.add_fact(limit)
    gc.collect()
    gc.disable()
    try:
        for i in range(50):
            f = Fact(kind="order", n=i)
            net.add_fact(f)
            net.run()
            f["n"] = i + 1
            net.update_fact(f)
            net.remove_fact(f)
        net.remove_fact(limit)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_modify_of_a_bound_but_untested_attribute_renews_the_match() -> None:
    # The counter shares no variable, so it is joined last and its join only binds "c":
    # a modify of "c" renews each match in place. It must look exactly like a withdrawn
    # and re-created match: new values, unfired, newest, old handles invalid, listeners
    # told, logical facts of the old match withdrawn.
    log: list[Any] = []
    net = ReteNetwork()
    rec = Recorder()

    class Counter(Fact):
        pass

    class Note(Fact):
        pass

    @Production(Order(id=V("o")) & Counter(c=V("c")), name="count")
    def count(o: int, c: int, net: ReteNetwork) -> None:
        log.append((o, c))
        net.add_fact(Note(o=o, c=c), logical=True)

    net.add_production(count)
    net.add_production(rule(Order(id=V("o"), vip=True), "vip"))
    ctr = Counter(c=1)
    net.add_fact(ctr)
    for i in (1, 2):
        net.add_fact(Order(id=i, vip=True))
    net.run()
    assert log == [(2, 1), (1, 1)]
    assert sorted(f["o"] for f in net.facts if isinstance(f, Note)) == [1, 2]
    old = {m.bindings["o"]: m for m in net.matches if m.production.name == "count"}
    net.add_listener(rec)
    ctr["c"] = 5
    net.update_fact(ctr)
    assert all(not m.valid for m in old.values())
    with pytest.raises(RuleError, match="no longer holds"):
        old[1].fire()
    assert [(m.production.name, m.bindings, m.fired) for m in net.new_matches] == [
        ("count", {"o": 2, "c": 5}, False),
        ("count", {"o": 1, "c": 5}, False),
    ]
    assert not any(isinstance(f, Note) for f in net.facts)  # their support went
    # (fired matches were no longer on the agenda: nothing to remove from it)
    assert [e for e in rec.events if e[0] in ("added", "removed")] == [("added", "count")] * 2
    ctr["c"] = 6  # renewed again before they fired: off the agenda, and back
    net.update_fact(ctr)
    assert [e for e in rec.events if e[0] in ("added", "removed")][2:] == [
        ("removed", "count"),
        ("removed", "count"),
        ("added", "count"),
        ("added", "count"),
    ]
    ctr["c"] = 5
    net.update_fact(ctr)
    assert net.run() == 2
    assert log[2:] == [(2, 5), (1, 5)]
    assert sorted(f["c"] for f in net.facts if isinstance(f, Note)) == [5, 5]
    ctr["c"] = 5  # no change: nothing renewed
    net.update_fact(ctr)
    assert net.run() == 0


def test_logical_fact_asserted_after_the_action_renewed_its_own_match_is_unsupported() -> None:
    class Counter(Fact):
        pass

    class Note(Fact):
        pass

    net = ReteNetwork()

    @Production(V("k") << Counter(c=V("c")))
    def bump(k: Fact, c: int, net: ReteNetwork) -> None:
        k["c"] = c + 1  # "c" is bound, not tested: this match is renewed in place
        net.update_fact(k)
        net.add_fact(Note(c=c), logical=True)  # its support (the old match) has gone

    net.add_production(bump)
    net.add_fact(Counter(c=1))
    assert net.run(1) == 1
    assert not any(isinstance(f, Note) for f in net.facts)
    assert [m.bindings["c"] for m in net.new_matches] == [2]  # the renewed match


def test_actions_get_their_arguments_by_position_or_keyword_alike() -> None:
    # Actions whose parameters can all be given by position are called that way (no
    # keyword dict per firing); the others by keyword, with the same values.
    net = ReteNetwork()
    net.inject("extra", "x")
    seen: list[tuple[Any, ...]] = []

    @Production(V("o") << Order(id=V("i")), name="plain")
    def plain(i: int, o: Fact, net: ReteNetwork, extra: str) -> None:
        seen.append(("plain", i, o["id"], net is not None, extra))

    @Production(V("o") << Order(id=V("i")), name="kwonly")
    def kwonly(i: int, *, o: Fact, extra: str) -> None:
        seen.append(("kwonly", i, o["id"], extra))

    @Production(V("o") << Order(id=V("i")), name="defaulted")
    def defaulted(i: int, missing: str = "d", extra: str = "-") -> None:
        seen.append(("defaulted", i, missing, extra))

    @Production(V("o") << Order(id=V("i")), name="starred")
    def starred(i: int, *rest: Any, **kw: Any) -> None:
        seen.append(("starred", i, rest, sorted(kw)))

    for p in (plain, kwonly, defaulted, starred):
        net.add_production(p)
    net.add_fact(Order(id=7))
    net.run()
    assert sorted(seen, key=repr) == sorted(
        [
            ("plain", 7, 7, True, "x"),
            ("kwonly", 7, 7, "x"),
            ("defaulted", 7, "d", "x"),
            ("starred", 7, (), ["extra", "net", "o"]),
        ],
        key=repr,
    )
    assert plain.positional and not kwonly.positional and not starred.positional


def test_arguments_left_to_defaults_take_a_value_injected_later() -> None:
    # An action whose arguments are bound values, then defaults, gets its bound values
    # straight from the match; once a value is injected under a defaulted name, it gets it.
    seen: list[tuple[Any, ...]] = []

    @Production(V("o") << Order(id=V("i")), name="d")
    def act(o: Fact, i: int, late: str = "default", other: int = 0) -> None:
        seen.append((o["id"], i, late, other))

    net = ReteNetwork()
    net.add_production(act)
    (pn,) = (n for n in net.nodes() if isinstance(n, PNode))
    assert pn.args is not None
    net.add_fact(Order(id=1))
    net.run()
    net.inject("late", "injected")
    assert pn.args is None
    net.add_fact(Order(id=2))
    net.run()
    assert seen == [(1, 1, "default", 0), (2, 2, "injected", 0)]
