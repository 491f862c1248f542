"""Condition semantics beyond py-rete: EXISTS, OR under NOT/EXISTS, Bind, accumulate,
productions without conditions, and the errors of misuse."""

from __future__ import annotations

from typing import Any

import pytest

from streamrules.errors import RuleError
from streamrules.rete import (
    EXISTS,
    NOT,
    Bind,
    Collect,
    Count,
    Fact,
    Filter,
    Max,
    Min,
    Production,
    ReteNetwork,
    Sum,
    V,
)


class Item(Fact):
    pass


class Box(Fact):
    pass


def prod(cond: Any, name: str = "p") -> Production:
    @Production(cond, name=name)
    def action(**kw: Any) -> Any:
        return {k: v for k, v in kw.items() if k != "net"}

    # An action taking **kw: Any is ambiguous to the decorator's overloads.
    assert isinstance(action, Production)
    return action


def names(net: ReteNetwork) -> list[str]:
    return [m.production.name for m in net.matches]


def test_exists_gives_one_match_however_many_facts() -> None:
    net = ReteNetwork()
    net.add_production(prod(Box(id=V("b")) & EXISTS(Item(box=V("b"))), "e"))
    box = net.add_fact(Box(id=1))
    items = [net.add_fact(Item(box=1, n=i)) for i in range(3)]
    assert names(net) == ["e"]
    net.run()
    net.remove_fact(items[0])  # still exists: the same match stays, no re-fire
    assert names(net) == ["e"] and not list(net.new_matches)
    for it in items[1:]:
        net.remove_fact(it)
    assert names(net) == []
    net.remove_fact(box)


def test_exists_and_not_of_alternatives() -> None:
    net = ReteNetwork()
    net.add_production(prod(Box(id=V("b")) & EXISTS(Item(box=V("b")) | Item(spare=True)), "e"))
    net.add_production(prod(Box(id=V("b")) & NOT(Item(box=V("b")) | Item(spare=True)), "n"))
    net.add_fact(Box(id=1))
    assert names(net) == ["n"]
    spare = net.add_fact(Item(spare=True))
    net.add_fact(Item(box=1))
    assert names(net) == ["e"]  # one EXISTS match although both alternatives hold
    net.remove_fact(spare)
    assert names(net) == ["e"]


def test_bind_onto_a_bound_variable_is_a_test() -> None:
    net = ReteNetwork()
    net.add_production(prod(Item(a=V("a"), b=V("b")) & Bind(lambda a: a + 1, V("b")), "succ"))
    net.add_fact(Item(a=1, b=2))
    net.add_fact(Item(a=1, b=3))
    assert [m.bindings for m in net.matches] == [{"a": 1, "b": 2}]


def test_accumulate_result_joins_later_conditions_and_groups_come_and_go() -> None:
    net = ReteNetwork()
    net.add_production(
        prod(Count(Item(box=V("b")), into="n", group_by="b") & Box(id=V("b"), size=V("n")), "full")
    )
    a = net.add_fact(Item(box=1))
    net.add_fact(Box(id=1, size=2))
    assert names(net) == []
    b = net.add_fact(Item(box=1))
    assert [m.bindings for m in net.matches] == [{"b": 1, "n": 2}]
    net.remove_fact(a)
    net.remove_fact(b)
    assert names(net) == []  # the group is gone with its last fact


def test_ungrouped_aggregates_of_nothing() -> None:
    net = ReteNetwork()
    net.add_production(
        prod(
            Count(Item(), into="c")
            & Sum(V("v"), Item(v=V("v")), into="s")
            & Min(V("v"), Item(v=V("v")), into="lo")
            & Max(V("v"), Item(v=V("v")), into="hi")
            & Collect(V("v"), Item(v=V("v")), into="all"),
            "agg",
        )
    )
    assert [m.bindings for m in net.matches] == [
        {"c": 0, "s": 0, "lo": None, "hi": None, "all": ()}
    ]
    net.add_fact(Item(v=2.5))
    net.add_fact(Item(v=1))
    (m,) = net.matches
    assert m.bindings == {"c": 2, "s": 3.5, "lo": 1, "hi": 2.5, "all": (1, 2.5)}


def test_collect_of_facts_keeps_assertion_order_and_min_change_refires() -> None:
    net = ReteNetwork()
    net.add_production(prod(Collect(Item(), into="items"), "c"))
    net.add_production(prod(Min(V("v"), Item(v=V("v")), into="lo"), "m"))
    first = net.add_fact(Item(v=5))
    second = net.add_fact(Item(v=3))
    by = {m.production.name: m for m in net.matches}
    assert by["c"].bindings["items"] == (first, second)
    net.run()
    net.add_fact(Item(v=9))  # the minimum does not change: that match stays fired
    assert [m.production.name for m in net.new_matches] == ["c"]


def test_production_without_conditions_matches_once() -> None:
    @Production()
    def always() -> str:
        return "yes"

    net = ReteNetwork()
    net.add_production(always)
    assert [m.fire() for m in net.matches] == ["yes"]


def test_update_without_change_does_nothing() -> None:
    net = ReteNetwork()
    net.add_production(prod(Item(v=V("v")), "p"))
    it = net.add_fact(Item(v=1))
    net.run()
    net.update_fact(it)
    assert not list(net.new_matches) and len(list(net.matches)) == 1


def test_misuse_is_reported() -> None:
    net = ReteNetwork()
    p = prod(Item(), "p")
    net.add_production(p)
    with pytest.raises(RuleError, match="already in this network"):
        net.add_production(p)
    with pytest.raises(RuleError, match="not in this network"):
        net.remove_production(prod(Item(), "q"))
    with pytest.raises(RuleError, match="not a condition"):
        net.add_production(prod(Item() & 3, "bad"))
    with pytest.raises(RuleError, match="no action"):
        net.add_production(Production(Item()))
    with pytest.raises(RuleError, match="group_by variable 'z'"):
        net.add_production(prod(Count(Item(a=V("a")), into="n", group_by="z"), "g"))
    with pytest.raises(RuleError, match="aggregated variable 'z'"):
        net.add_production(prod(Sum(V("z"), Item(a=V("a")), into="n"), "s"))
    with pytest.raises(RuleError, match="a fact cannot contain itself"):
        loop = Item()
        loop["self"] = loop
        net.add_fact(loop)
    with pytest.raises(RuleError, match="needs a Fact"):
        net.add_fact({"a": 1})  # type: ignore[arg-type]
    assert net.facts == []


def test_filter_sees_facts_and_values() -> None:
    net = ReteNetwork()
    net.add_production(
        prod(V("i") << Item(v=V("v")) & Filter(lambda i, v: isinstance(i, Item) and v > 1), "f")
    )
    net.add_fact(Item(v=1))
    net.add_fact(Item(v=2))
    assert [m.bindings["v"] for m in net.matches] == [2]


def test_a_refused_production_leaves_nothing_behind() -> None:
    net = ReteNetwork()
    keep = prod(Item(a=V("a")) & Box(id=V("a")), "keep")
    net.add_production(keep)
    net.add_fact(Item(a=1))
    before = dict(net.stats())
    bad = prod(
        Item(a=V("a")) & Box(id=V("a")) & NOT(Box(big=True)) & Item(z=V("z")) & Filter(lambda y: y),
        "bad",
    )
    with pytest.raises(RuleError, match="'y'"):
        net.add_production(bad)
    assert dict(net.stats()) == before
    assert net.productions == [keep]
