"""py-rete's README examples, run as documented there, with only the import changed."""

from __future__ import annotations

import pytest

from streamrules.rete import AND, NOT, OR, Fact, Filter, Production, ReteNetwork, V


def test_facts_are_dicts_with_positional_and_named_values() -> None:
    f = Fact(a=1, b=2)
    assert f["a"] == 1
    f = Fact("a", "b", "c")
    assert f[0] == "a"
    f = Fact("a", "b", c=3, d=4)
    assert f[0] == "a"
    assert f["c"] == 3
    assert repr(Fact(subfact=Fact())) == "Fact(subfact=Fact())"


def test_light_switch(capsys: pytest.CaptureFixture[str]) -> None:
    f1 = Fact(light_color="red")

    @Production(V("fact") << Fact(light_color="red"))
    def make_green(net: ReteNetwork, fact: Fact) -> None:
        print("making green")
        fact["light_color"] = "green"
        net.update_fact(fact)

    @Production(V("fact") << Fact(light_color="green"))
    def make_red(net: ReteNetwork, fact: Fact) -> None:
        print("making red")
        fact["light_color"] = "red"
        net.update_fact(fact)

    light_net = ReteNetwork()
    light_net.add_fact(f1)
    light_net.add_production(make_green)
    light_net.add_production(make_red)
    assert light_net.run(5) == 5
    out = capsys.readouterr().out.split("\n")
    assert out[:5] == ["making green", "making red", "making green", "making red", "making green"]

    matches = list(light_net.matches)
    new = list(light_net.new_matches)
    assert [m.production.name for m in matches] == ["make_red"]
    assert new == matches
    matches[0].fire()
    assert capsys.readouterr().out == "making red\n"
    assert f1["light_color"] == "red"


def test_or_and_not() -> None:
    found: list[str] = []

    @Production(AND(OR(Fact(color="red"), Fact(color="blue")), NOT(Fact(color="green"))))
    def alert_something_complex() -> None:
        found.append("complex")

    @Production((Fact(color="red") | Fact(color="blue")) & ~Fact(color="green"))
    def alert_something_complex2() -> None:
        found.append("complex2")

    net = ReteNetwork()
    net.add_production(alert_something_complex)
    net.add_production(alert_something_complex2)
    red = net.add_fact(Fact(color="red"))
    net.run()
    assert sorted(found) == ["complex", "complex2"]
    green = Fact(color="green")
    net.add_fact(green)
    assert list(net.matches) == []
    net.remove_fact(green)
    net.remove_fact(red)
    blue = Fact(color="blue")
    net.add_fact(blue)
    assert len(list(net.new_matches)) == 2


def test_variables_are_passed_by_name() -> None:
    seen: list[str] = []

    @Production(Fact(lastname=V("lastname")))
    def found_relatives(lastname: str) -> None:
        seen.append(lastname)

    net = ReteNetwork()
    net.add_production(found_relatives)
    net.add_fact(Fact(lastname="Doe"))
    net.add_fact(Fact(firstname="John"))
    net.run()
    assert seen == ["Doe"]


def test_filters_in_order() -> None:
    seen: list[tuple[int, int, int]] = []

    @Production(
        Fact(value=V("a"))
        & Fact(value=V("b"))
        & Filter(lambda a, b: a > b)
        & Fact(value=V("c"))
        & Filter(lambda b, c: b > c)
    )
    def three_values(a: int, b: int, c: int) -> None:
        seen.append((a, b, c))

    net = ReteNetwork()
    net.add_production(three_values)
    for v in (1, 2, 3, 4):
        net.add_fact(Fact(value=v))
    net.run()
    want = [(a, b, c) for a in range(1, 5) for b in range(1, 5) for c in range(1, 5) if a > b > c]
    assert sorted(seen) == want


def test_binding_a_fact_with_lshift() -> None:
    seen: list[Fact] = []

    @Production(V("name_fact") << Fact(name=V("name")))
    def found_name(name_fact: Fact) -> None:
        seen.append(name_fact)

    net = ReteNetwork()
    net.add_production(found_name)
    f = Fact(name="x")
    net.add_fact(f)
    net.run()
    assert seen == [f]
    assert seen[0] is f


def test_run_n_stops_after_n_firings() -> None:
    @Production(Fact(n=V("n")))
    def count(n: int) -> None:
        return None

    net = ReteNetwork()
    net.add_production(count)
    for i in range(5):
        net.add_fact(Fact(n=i))
    assert net.run(2) == 2
    assert len(list(net.new_matches)) == 3
    assert net.run() == 3
    assert net.run() == 0


def test_subclasses_match_only_their_own_kind_and_nested_facts() -> None:
    class Person(Fact):
        pass

    class Pet(Fact):
        pass

    seen: list[tuple[str, str]] = []

    @Production(Person(name=V("n"), pet=Pet(kind=V("k"))))
    def owner(n: str, k: str) -> None:
        seen.append((n, k))

    @Production(Fact(name=V("n")))
    def plain(n: str) -> None:
        seen.append(("plain", n))

    net = ReteNetwork()
    net.add_production(owner)
    net.add_production(plain)
    rex = Pet(kind="dog")
    net.add_fact(Person(name="ann", pet=rex))
    net.add_fact(Fact(name="bob"))
    assert rex in net  # nested facts are asserted too
    net.run()
    assert sorted(seen) == [("ann", "dog"), ("plain", "bob")]
