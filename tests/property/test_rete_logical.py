"""Logical insertion and accumulate results against a brute-force evaluator.

A production logically asserts a derived fact per match; a second production derives
from those. After any sequence of changes followed by ``run()``, the derived facts must be
exactly those the current matches justify. Accumulate results (count, sum, min, max,
collect per group) are checked against recomputation from scratch.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamrules.rete import NOT, Collect, Count, Fact, Max, Min, Production, ReteNetwork, Sum, V


class A(Fact):
    pass


class B(Fact):
    pass


class D(Fact):
    pass


class E(Fact):
    pass


VALUES = (0, 1, 2)
op = st.one_of(
    st.tuples(st.just("addA"), st.sampled_from(VALUES), st.sampled_from(VALUES)),
    st.tuples(st.just("addB"), st.sampled_from(VALUES), st.sampled_from(VALUES)),
    st.tuples(st.just("remove"), st.integers(0, 30)),
    st.tuples(
        st.just("update"),
        st.integers(0, 30),
        st.sampled_from(("x", "y", "z")),
        st.sampled_from(VALUES),
    ),
)


def apply(net: ReteNetwork, facts: list[Fact], o: tuple[Any, ...]) -> None:
    if o[0] in ("addA", "addB"):
        f: Fact = (A if o[0] == "addA" else B)(x=o[1], y=o[2])
        facts.append(f)
        net.add_fact(f)
    elif o[0] == "remove" and facts:
        net.remove_fact(facts.pop(o[1] % len(facts)))
    elif o[0] == "update" and facts:
        f = facts[o[1] % len(facts)]
        f[o[2]] = o[3]
        net.update_fact(f)


@given(st.lists(op, min_size=1, max_size=40))
def test_logical_facts_follow_their_support(ops: list[tuple[Any, ...]]) -> None:
    net = ReteNetwork()
    fired: Counter[str] = Counter()

    @Production(A(x=V("p")) & NOT(B(x=V("p"))))
    def derive(net: ReteNetwork, p: int) -> None:
        fired["derive"] += 1
        net.add_fact(D(x=p), logical=True)

    @Production(D(x=V("p")) & B(y=V("p")))
    def chain(net: ReteNetwork, p: int) -> None:
        net.add_fact(E(x=p), logical=True)

    net.add_production(derive)
    net.add_production(chain)
    facts: list[Fact] = []
    for o in ops:
        apply(net, facts, o)
        net.run()
        a_s = [f for f in facts if type(f) is A]
        b_s = [f for f in facts if type(f) is B]
        want_d = sorted(a["x"] for a in a_s if not any(b["x"] == a["x"] for b in b_s))
        live = net.facts
        got_d = sorted(f["x"] for f in live if type(f) is D)
        assert got_d == want_d, o
        want_e = sorted(d for d in want_d for b in b_s if b["y"] == d)
        got_e = sorted(f["x"] for f in live if type(f) is E)
        assert got_e == want_e, o
        assert not list(net.new_matches)


@given(st.lists(op, min_size=1, max_size=40))
def test_accumulate_results_equal_recomputation(ops: list[tuple[Any, ...]]) -> None:
    net = ReteNetwork()
    prods = [
        Production(Count(A(x=V("g")), into="n", group_by="g"), name="count")(lambda g, n: None),
        Production(B(x=V("g")) & Sum(V("v"), A(x=V("g"), y=V("v")), into="n"), name="sum")(
            lambda g, n: None
        ),
        Production(Min(V("v"), A(y=V("v")), into="n"), name="min")(lambda n: None),
        Production(Max(V("v"), B(y=V("v"), x=V("g")), into="n", group_by=["g"]), name="max")(
            lambda g, n: None
        ),
        Production(Collect(V("v"), A(y=V("v")), into="n"), name="collect")(lambda n: None),
    ]
    for p in prods:
        net.add_production(p)
    facts: list[Fact] = []
    for o in ops:
        apply(net, facts, o)
        a_s = [f for f in facts if type(f) is A]
        b_s = [f for f in facts if type(f) is B]
        want: Counter[Any] = Counter()
        for g in {a["x"] for a in a_s}:
            want[("count", g, sum(1 for a in a_s if a["x"] == g))] += 1
        for b in b_s:
            want[("sum", b["x"], sum(a["y"] for a in a_s if a["x"] == b["x"]))] += 1
        want[("min", None, min((a["y"] for a in a_s), default=None))] += 1
        for g in {b["x"] for b in b_s}:
            want[("max", g, max(b["y"] for b in b_s if b["x"] == g))] += 1
        want[("collect", None, tuple(sorted(a["y"] for a in a_s)))] += 1
        got = Counter(
            (m.production.name, m.bindings.get("g"), m.bindings["n"]) for m in net.matches
        )
        assert got == want, o
        if len(facts) % 3 == 0:
            net.run()


def test_not_negation_of_missing_pattern_is_true() -> None:
    net = ReteNetwork()

    @Production(NOT(B()))
    def nothing() -> None:
        return None

    net.add_production(nothing)
    assert len(list(net.matches)) == 1
    b = B(x=1)
    net.add_fact(b)
    assert list(net.matches) == []
    net.remove_fact(b)
    assert len(list(net.matches)) == 1
