"""What code written against py-rete's public API relies on beyond its README examples.

Each test runs against streamrules. Where a test states py-rete's behaviour, that was
checked by running the same code against py-rete at GitHub HEAD, commit 2d05d5f
(cmaclell/py_rete, 2024-09-10; PyPI's 0.0.6 is the older triple API and has none of this).
"""

from __future__ import annotations

from typing import Any

import pytest

from streamrules.errors import RuleError, RuleValueError, StreamRulesError
from streamrules.rete import NOT, Fact, Match, Production, ReteNetwork, V


class Order(Fact):
    pass


# -- 1. facts hash, and equality agrees with the hash ---------------------------------------


def test_facts_are_hashable_and_compare_by_identity() -> None:
    # py-rete (HEAD 2d05d5f): hashable; two facts added to a network are unequal.
    a, b = Fact(n=1), Fact(n=1)
    assert len({a, b}) == 2 and {a: 1, b: 2}[a] == 1  # two facts, as in a network
    assert a == a and a != b and (a == b) is False
    assert a != {"n": 1} and {"n": 1} != a  # noqa: SIM300 (an entity, not its contents)
    assert dict(a) == dict(b)  # contents compare as dicts


def test_a_facts_hash_survives_the_update_fact_idiom() -> None:
    net = ReteNetwork()
    f = net.add_fact(Order(status="new"))
    seen = {f: "first"}
    f["status"] = "paid"
    net.update_fact(f)
    assert seen[f] == "first" and f in set(net.facts)


def test_matched_facts_can_be_collected_in_a_set() -> None:
    @Production(V("o") << Order(c=V("c")))
    def orders(o: Order) -> Order:
        return o

    net = ReteNetwork()
    net.add_production(orders)
    facts = [net.add_fact(Order(c=i % 2)) for i in range(4)]
    assert {f for m in net.matches for f in m.facts} == set(facts)


# -- 2. matches / new_matches are live generators --------------------------------------------


def chain_network(fired: list[int]) -> ReteNetwork:
    @Production(Fact(n=V("x")))
    def chain(net: ReteNetwork, x: int) -> None:
        fired.append(x)
        if x < 3:
            net.add_fact(Fact(n=x + 1))

    net = ReteNetwork()
    net.add_production(chain)
    net.add_fact(Fact(n=0))
    return net


def test_matches_is_an_iterator() -> None:
    net = ReteNetwork()
    assert next(net.matches, None) is None
    assert next(net.new_matches, None) is None
    net.add_production(Production(Fact(a=1))(lambda: None))
    net.add_fact(Fact(a=1))
    m = next(net.matches)
    assert isinstance(m, Match) and m.production.name == "<lambda>"


@pytest.mark.parametrize("view", ["matches", "new_matches"])
def test_firing_while_iterating_sees_the_matches_firing_makes(view: str) -> None:
    # py-rete (HEAD 2d05d5f): [0, 1, 2, 3], for both views.
    fired: list[int] = []
    net = chain_network(fired)
    for m in getattr(net, view):
        m.fire()
    assert fired == [0, 1, 2, 3]
    assert not list(net.new_matches) and len(list(net.matches)) == 4


def test_a_view_skips_a_match_an_earlier_firing_retracted() -> None:
    # py-rete (HEAD 2d05d5f) skips it too (which of the two fires first differs: py-rete
    # goes by production and insertion, streamrules by agenda order, newest first).
    fired: list[int] = []

    @Production(V("f") << Fact(k=V("k")))
    def exclusive(net: ReteNetwork, f: Fact, k: int) -> None:
        fired.append(k)
        for g in net.facts:
            if g is not f:
                net.remove_fact(g)

    net = ReteNetwork()
    net.add_production(exclusive)
    net.add_fact(Fact(k=1))
    net.add_fact(Fact(k=2))
    for m in net.matches:
        m.fire()
    assert fired == [2]
    assert [m.bindings["k"] for m in net.matches] == [2]


def test_a_view_yields_each_match_once_in_agenda_order() -> None:
    @Production(Fact(n=V("n")), salience=1)
    def high(n: int) -> int:
        return n

    @Production(Fact(n=V("n")))
    def low(n: int) -> int:
        return n

    net = ReteNetwork()
    net.add_production(low)
    net.add_production(high)
    for i in range(3):
        net.add_fact(Fact(n=i))
    got = [(m.production.name, m.bindings["n"]) for m in net.matches]
    assert got == [("high", 2), ("high", 1), ("high", 0), ("low", 2), ("low", 1), ("low", 0)]
    it = net.matches
    first = next(it)
    net.add_fact(Fact(n=9))  # newer, so first in its salience: seen next
    assert [(m.production.name, m.bindings["n"]) for m in it] == [
        ("high", 9),
        ("high", 1),
        ("high", 0),
        ("low", 9),
        ("low", 2),
        ("low", 1),
        ("low", 0),
    ]
    assert first.bindings["n"] == 2


def test_a_match_renewed_by_a_modify_is_new_again_in_the_view() -> None:
    @Production(V("o") << Order(total=V("t")))
    def big(o: Order, t: int) -> int:
        return t

    net = ReteNetwork()
    net.add_production(big)
    o = net.add_fact(Order(total=1))
    assert net.run() == 1 and not list(net.new_matches)
    o["total"] = 2
    net.update_fact(o)
    assert [m.bindings["t"] for m in net.new_matches] == [2]


# -- 4. get_new_match: "new" is "not yet taken" (nor fired) ---------------------------------


def test_get_new_match_takes_matches_one_by_one() -> None:
    @Production(Fact(n=V("x")))
    def p(x: int) -> int:
        return x

    net = ReteNetwork()
    net.add_production(p)
    net.add_fact(Fact(n=1))
    net.add_fact(Fact(n=2))
    m = net.get_new_match()
    assert m is not None and m.bindings["x"] == 2  # agenda order: newest first
    # Taken, not fired: out of new_matches (py-rete HEAD 2d05d5f: 1 new, 2 matches) ...
    assert [x.bindings["x"] for x in net.new_matches] == [1]
    assert len(list(net.matches)) == 2
    m2 = net.get_new_match()
    assert m2 is not None and m2.bindings["x"] == 1
    assert net.get_new_match() is None and not list(net.new_matches)
    # ... but still pending for run(), which fires what was taken and not fired.
    assert m.fire() == 2
    assert net.run() == 1


def test_py_retes_benchmark_loop_runs() -> None:
    # py-rete's own benchmarks/test_network.py drives its network this way.
    fired: list[int] = []
    net = chain_network(fired)
    while len(list(net.new_matches)) > 0:
        m = net.get_new_match()
        assert m is not None
        m.fire()
    assert fired == [0, 1, 2, 3]


def test_a_taken_match_that_is_renewed_is_new_again() -> None:
    @Production(V("o") << Order(total=V("t")))
    def big(o: Order, t: int) -> int:
        return t

    net = ReteNetwork()
    net.add_production(big)
    o = net.add_fact(Order(total=1))
    assert net.get_new_match() is not None and net.get_new_match() is None
    o["total"] = 2
    net.update_fact(o)
    m = net.get_new_match()
    assert m is not None and m.bindings["t"] == 2


def test_taken_matches_are_forgotten_once_gone() -> None:
    @Production(Fact(n=V("x")))
    def p(x: int) -> int:
        return x

    net = ReteNetwork()
    net.add_production(p)
    for i in range(300):
        f = net.add_fact(Fact(n=i))
        assert net.get_new_match() is not None
        net.remove_fact(f)
    assert len(net._taken) <= 65  # pruned as it grows, not one entry per match ever taken


# -- 5. ValueError where py-rete raises ValueError ---------------------------------------------


def _misuses() -> list[tuple[str, Any]]:
    @Production(Fact(a=1))
    def p() -> None:
        return None

    def add_twice() -> None:
        net = ReteNetwork()
        net.add_production(p)
        net.add_production(p)

    def remove_unknown() -> None:
        ReteNetwork().remove_production(p)

    def fact_with_variable() -> None:
        ReteNetwork().add_fact(Fact(a=V("x")))

    def remove_unknown_fact() -> None:
        ReteNetwork().remove_fact(Fact(b=1))

    def update_unknown_fact() -> None:
        ReteNetwork().update_fact(Fact(b=1))

    return [
        ("add_production twice", add_twice),
        ("remove_production of an unknown production", remove_unknown),
        ("a fact holding a variable", fact_with_variable),
        ("remove_fact of an unknown fact", remove_unknown_fact),
        ("update_fact of an unknown fact", update_unknown_fact),
    ]


@pytest.mark.parametrize(("what", "call"), _misuses(), ids=[w for w, _ in _misuses()])
def test_misuse_is_a_value_error_and_a_rule_error(what: str, call: Any) -> None:
    # py-rete (HEAD 2d05d5f) raises ValueError in each of these cases.
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, RuleValueError)
    assert isinstance(info.value, RuleError) and isinstance(info.value, StreamRulesError)


def test_other_rule_errors_are_not_value_errors() -> None:
    @Production(Fact(a=1))
    def boom() -> None:
        raise KeyError("x")

    net = ReteNetwork()
    net.add_production(boom)
    net.add_fact(Fact(a=1))
    with pytest.raises(RuleError) as info:
        net.run()
    assert not isinstance(info.value, ValueError)  # an action's failure is not a misuse


# -- 6. calling a production directly ------------------------------------------------------


def test_calling_a_production_drops_keywords_its_function_does_not_take() -> None:
    @Production(Fact(x=V("x")))
    def p(x: int) -> int:
        return x * 2

    assert p(x=3, net=None) == 6  # py-rete (HEAD 2d05d5f): 6
    assert p(3) == 6

    @Production(Fact(x=V("x")))
    def q(x: int, **rest: Any) -> tuple[int, dict[str, Any]]:
        return x, rest

    assert q(x=1, net=None) == (1, {"net": None})  # **kwargs takes them all

    @Production(Fact(x=V("x")))
    def r(*, x: int) -> int:
        return x

    assert r(x=5, y=6) == 5
    with pytest.raises(TypeError):  # a missing argument is still an error
        p(net=None)


def test_not_is_unaffected_by_identity_equality() -> None:
    # Patterns are Facts too: sharing nodes between equal patterns must not need ==.
    @Production(Order(s="a") & NOT(Order(s="b")))
    def one() -> int:
        return 1

    @Production(Order(s="a") & NOT(Order(s="b")))
    def two() -> int:
        return 2

    net = ReteNetwork()
    net.add_production(one)
    net.add_production(two)
    net.add_fact(Order(s="a"))
    assert sorted(m.fire() for m in net.matches) == [1, 2]
    b = net.add_fact(Order(s="b"))
    assert not list(net.matches)
    net.remove_fact(b)
    assert len(list(net.matches)) == 2
