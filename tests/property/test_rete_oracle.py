"""The engine against a brute-force evaluator.

Random productions (joins, constants, NOT, NCC, EXISTS, Filter, Bind, accumulate, OR)
and random add / remove / update / add-production / remove-production / run sequences;
after every step the multiset of matches (production, facts, bindings) must equal what a
plain-Python enumeration of all fact combinations gives.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from streamrules.rete import (
    AND,
    EXISTS,
    NOT,
    OR,
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
    beta,
)


class A(Fact):
    pass


class B(Fact):
    pass


class C(Fact):
    """Only in the cross-join test's tails (the other strategies draw from ``TYPES``)."""


TYPES = {"A": A, "B": B}
KNOWN = {**TYPES, "C": C}  # what specs and operations may name
ATTRS = ("x", "y")
VALUES = (0, 1, 2)
VARS = ("p", "q", "r")

# Filters by the variables they read (the parameter names are the variable names).
FILTERS: dict[tuple[str, ...], list[Callable[..., bool]]] = {
    ("p",): [lambda p: p > 0, lambda p: p != 1],
    ("q",): [lambda q: q % 2 == 0],
    ("r",): [lambda r: r < 2],
    ("p", "q"): [lambda p, q: p <= q, lambda p, q: p != q],
    ("q", "r"): [lambda q, r: q + r == 2],
    ("n",): [lambda n: bool(n), lambda n: isinstance(n, int) and n >= 1],
}
BINDS: dict[tuple[str, ...], Callable[..., Any]] = {
    ("p",): lambda p: (p + 1) % 3,
    ("q",): lambda q: q * 2 % 3,
    ("p", "q"): lambda p, q: (p + q) % 3,
}

# -- specs: one description drives both the Production and the oracle ------------------
# ("pat", type, {attr: ("c", value) | ("v", var)}, bind_name | None)
# ("not", [specs]) / ("exists", [specs]) / ("filter", params, fn)
# ("bind", params, fn, target) / ("acc", kind, value_var | None, pat_spec, into, group_by)


@st.composite
def pattern(
    draw: Any, bound: set[str], allow_bind: bool = True, allow_nested: bool = True
) -> tuple[Any, ...]:
    tname = draw(st.sampled_from(sorted(TYPES)))
    slots: dict[str, tuple[str, Any]] = {}
    for attr in ATTRS:
        kind = draw(st.sampled_from(["absent", "const", "var", "var"]))
        if kind == "const":
            slots[attr] = ("c", draw(st.sampled_from(VALUES)))
        elif kind == "var":
            slots[attr] = ("v", draw(st.sampled_from(VARS)))
    # "sub" holds a nested fact: matched by a variable (an identity join) or a pattern.
    if allow_nested:
        sub = draw(st.sampled_from(["absent"] * 6 + ["var", "nested"]))
        if sub == "var":
            slots["sub"] = ("v", "s")
        elif sub == "nested":
            slots["sub"] = ("n", draw(pattern(bound, allow_bind=False, allow_nested=False)))
    bind = None
    if allow_bind and draw(st.integers(0, 4)) == 0:
        bind = f"f{draw(st.integers(0, 1))}"
        if bind in bound:
            bind = None
    return ("pat", tname, slots, bind)


def pat_vars(spec: tuple[Any, ...]) -> set[str]:
    out = {v for k, v in spec[2].values() if k == "v"}
    for k, v in spec[2].values():
        if k == "n":
            out |= pat_vars(v)
    if spec[3] is not None:
        out.add(spec[3])
    return out


def expand(spec: tuple[Any, ...], counter: list[int]) -> list[tuple[Any, ...]]:
    """A pattern with nested patterns as flat patterns, the nested ones first (the
    engine's order); the nested fact is bound to a hidden variable joined on identity."""
    out: list[tuple[Any, ...]] = []
    slots = {}
    for attr, (k, v) in spec[2].items():
        if k == "n":
            counter[0] += 1
            hidden = f"_n{counter[0]}"
            inner = expand(v, counter)
            last = inner[-1]
            inner[-1] = (last[0], last[1], last[2], hidden)
            out.extend(inner)
            slots[attr] = ("v", hidden)
        else:
            slots[attr] = (k, v)
    out.append((spec[0], spec[1], slots, spec[3]))
    return out


@st.composite
def conjunction(draw: Any, bound: set[str], depth: int, size: int) -> list[tuple[Any, ...]]:
    """A list of conditions; ``bound`` is updated with what they bind."""
    out: list[tuple[Any, ...]] = []
    for i in range(size):
        choices = ["pat", "pat", "pat"]
        if i > 0 or depth > 0:
            choices += ["filter", "bind"]
        if depth == 0:
            choices += ["not", "exists", "acc"]
        kind = draw(st.sampled_from(choices))
        if kind == "pat":
            p = draw(pattern(bound))
            out.append(p)
            bound |= pat_vars(p)
        elif kind == "filter":
            usable = [k for k in FILTERS if set(k) <= bound]
            if not usable:
                continue
            params = draw(st.sampled_from(usable))
            out.append(("filter", params, draw(st.sampled_from(FILTERS[params]))))
        elif kind == "bind":
            usable = [k for k in BINDS if set(k) <= bound]
            if not usable:
                continue
            params = draw(st.sampled_from(usable))
            target = draw(st.sampled_from(VARS))
            out.append(("bind", params, BINDS[params], target))
            bound.add(target)
        elif kind in ("not", "exists"):
            inner = draw(conjunction(set(bound), depth + 1, draw(st.integers(1, 2))))
            if inner and inner[0][0] == "pat":
                out.append((kind, inner))
        else:
            agg = draw(st.sampled_from(["count", "sum", "min", "max", "collect"]))
            p = draw(pattern(bound, allow_bind=False, allow_nested=False))
            own = sorted(v for k, v in p[2].values() if k == "v" and v != "s")
            if agg != "count" and not own:
                continue
            value = None if agg == "count" else draw(st.sampled_from(own))
            group = (
                tuple(draw(st.lists(st.sampled_from(own), max_size=1, unique=True))) if own else ()
            )
            into = "n" if "n" not in bound else None
            if into is None:
                continue
            out.append(("acc", agg, value, p, into, group))
            bound.add(into)
            bound |= set(group)
    return out


@st.composite
def production_spec(draw: Any) -> list[list[tuple[Any, ...]]]:
    """One or two alternatives (OR), each a conjunction starting with a pattern."""
    alts = []
    for _ in range(draw(st.integers(1, 2)) if draw(st.integers(0, 3)) == 0 else 1):
        bound: set[str] = set()
        first = draw(pattern(bound))
        bound |= pat_vars(first)
        rest = draw(conjunction(bound, 0, draw(st.integers(0, 3))))
        alts.append([first, *rest])
    return alts


def build_cond(spec: tuple[Any, ...]) -> Any:
    kind = spec[0]
    if kind == "pat":
        _, tname, slots, bind = spec
        vals = {
            a: (V(v) if k == "v" else build_cond(v) if k == "n" else v)
            for a, (k, v) in slots.items()
        }
        f = KNOWN[tname](**vals)
        return V(bind) << f if bind else f
    if kind in ("not", "exists"):
        inner = [build_cond(s) for s in spec[1]]
        return NOT(*inner) if kind == "not" else EXISTS(*inner)
    if kind == "filter":
        return Filter(spec[2])
    if kind == "bind":
        return Bind(spec[2], V(spec[3]))
    _, agg, value, p, into, group = spec
    pat = build_cond(p)
    if agg == "count":
        return Count(pat, into=into, group_by=group)
    cls = {"sum": Sum, "min": Min, "max": Max, "collect": Collect}[agg]
    return cls(V(value), pat, into=into, group_by=group)


def build_production(name: str, alts: list[list[tuple[Any, ...]]]) -> Production:
    conds = [AND(*[build_cond(s) for s in alt]) for alt in alts]
    cond = conds[0] if len(conds) == 1 else OR(*conds)

    @Production(cond, name=name)
    def action() -> None:
        return None

    return action


# -- the oracle ------------------------------------------------------------------------


def match_pat(spec: tuple[Any, ...], f: Fact, env: dict[str, Any]) -> dict[str, Any] | None:
    _, tname, slots, bind = spec
    if type(f) is not KNOWN[tname]:
        return None
    e = dict(env)
    if bind is not None:
        if bind in e:
            if e[bind] is not f:
                return None
        else:
            e[bind] = f
    for attr, (k, v) in slots.items():
        if attr not in f:
            return None
        x = f[attr]
        if k == "c":
            if isinstance(x, Fact) or x != v:
                return None
        elif v in e:
            y = e[v]
            if isinstance(x, Fact) or isinstance(y, Fact):
                if x is not y:  # facts are the same fact, not equal dicts
                    return None
            elif y != x:
                return None
        else:
            e[v] = x
    return e


def aggregate(agg: str, values: list[Any]) -> Any:
    if agg == "count":
        return len(values)
    if agg == "sum":
        return sum(values)
    if agg == "min":
        return min(values) if values else None
    if agg == "max":
        return max(values) if values else None
    return tuple(sorted(values))


def solve(
    conds: list[tuple[Any, ...]], env: dict[str, Any], facts: list[Fact]
) -> Iterator[tuple[dict[str, Any], tuple[Fact, ...]]]:
    if not conds:
        yield env, ()
        return
    c, rest = conds[0], conds[1:]
    kind = c[0]
    if kind == "pat" and any(k == "n" for k, _ in c[2].values()):
        yield from solve(expand(c, [0]) + rest, env, facts)
    elif kind == "pat":
        for f in facts:
            e = match_pat(c, f, env)
            if e is not None:
                for e2, fs in solve(rest, e, facts):
                    yield e2, (f, *fs)
    elif kind in ("not", "exists"):
        found = any(True for _ in solve(c[1], env, facts))
        if found == (kind == "exists"):
            yield from solve(rest, env, facts)
    elif kind == "filter":
        if c[2](*[env[p] for p in c[1]]):
            yield from solve(rest, env, facts)
    elif kind == "bind":
        v = c[2](*[env[p] for p in c[1]])
        if c[3] in env:
            if env[c[3]] == v:
                yield from solve(rest, env, facts)
        else:
            yield from solve(rest, {**env, c[3]: v}, facts)
    else:
        _, agg, value, p, into, group = c
        groups: dict[tuple[Any, ...], list[Any]] = {}
        for f in facts:
            e = match_pat(p, f, env)
            if e is not None:
                gk = tuple(e[g] for g in group)
                groups.setdefault(gk, []).append(None if value is None else e[value])
        if not group:
            groups.setdefault((), [])
        for gk, vals in groups.items():
            e2 = {**env, into: aggregate(agg, vals)}
            e2.update(zip(group, gk, strict=True))
            yield from solve(rest, e2, facts)


def norm(bindings: dict[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset(
        (k, ("fact", id(v)) if isinstance(v, Fact) else v)
        for k, v in bindings.items()
        if not k.startswith("_")
    )


def oracle(prods: dict[str, list[list[tuple[Any, ...]]]], facts: list[Fact]) -> Counter[Any]:
    out: Counter[Any] = Counter()
    for name, alts in prods.items():
        for alt in alts:
            for env, fs in solve(alt, {}, facts):
                out[(name, tuple(id(f) for f in fs), norm(env))] += 1
    return out


def engine(net: ReteNetwork) -> Counter[Any]:
    return Counter(
        (m.production.name, tuple(id(f) for f in m.facts), norm(m.bindings)) for m in net.matches
    )


# -- the test --------------------------------------------------------------------------

full_values = st.fixed_dictionaries({a: st.sampled_from(VALUES) for a in ATTRS})
some_values = st.fixed_dictionaries({}, optional={a: st.sampled_from(VALUES) for a in ATTRS})
OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "add": st.tuples(st.just("add"), st.sampled_from(sorted(TYPES)), full_values),
    "add_partial": st.tuples(st.just("add"), st.sampled_from(sorted(TYPES)), some_values),
    "remove": st.tuples(st.just("remove"), st.integers(0, 50)),
    "update": st.tuples(
        st.just("update"),
        st.integers(0, 50),
        st.sampled_from(ATTRS),
        st.sampled_from((*VALUES, None)),
    ),
    "update_untested": st.tuples(
        st.just("update"), st.integers(0, 50), st.just("z"), st.sampled_from(VALUES)
    ),
    "run": st.tuples(st.just("run"), st.integers(0, 3)),
    "add_nested": st.tuples(
        st.just("add_nested"), st.sampled_from(sorted(TYPES)), full_values, st.integers(0, 50)
    ),
    "update_sub": st.tuples(st.just("update_sub"), st.integers(0, 50), st.integers(0, 50)),
    "addprod": st.tuples(st.just("addprod"), production_spec()),
    "removeprod": st.tuples(st.just("removeprod"), st.integers(0, 10)),
}
# Weighted so that working memory grows and changes more often than the rules do.
KINDS = ["add"] * 6 + ["add_partial"] + ["remove"] * 5 + ["update"] * 5
KINDS += ["update_untested", "run", "run", "addprod", "removeprod", "add_nested", "update_sub"]
operation = st.sampled_from(KINDS).flatmap(lambda k: OPS[k])


FACT_CHANGES = ("add", "add_nested", "remove", "update", "update_sub")


def _live(net: ReteNetwork, facts: list[Fact], f: Fact) -> None:
    """The engine (as py-rete) asserts a nested fact that is not live when its holder is
    added or updated: mirror that in the oracle's fact list."""
    sub = f.get("sub")
    if isinstance(sub, Fact) and not any(sub is g for g in facts):
        facts.append(sub)


def apply_fact_op(net: ReteNetwork, facts: list[Fact], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind in ("add", "add_nested"):
        f = KNOWN[op[1]](**op[2])
        if kind == "add_nested" and facts:
            f["sub"] = facts[op[3] % len(facts)]
        facts.append(f)
        net.add_fact(f)
    elif kind == "remove" and facts:
        net.remove_fact(facts.pop(op[1] % len(facts)))
    elif kind == "update" and facts:
        f = facts[op[1] % len(facts)]
        if op[3] is None:
            f.pop(op[2], None)
        else:
            f[op[2]] = op[3]
        _live(net, facts, f)
        net.update_fact(f)
    elif kind == "update_sub" and facts:
        f = facts[op[1] % len(facts)]
        sub = facts[op[2] % len(facts)]
        if sub is not f:
            f["sub"] = sub
            net.update_fact(f)
    for f in facts:
        assert f in net


def run_against_oracle(
    initial: list[list[list[tuple[Any, ...]]]],
    ops: list[tuple[Any, ...]],
    on_built: Callable[[ReteNetwork], None] | None = None,
) -> None:
    """Build ``initial``'s productions, apply ``ops`` (fact changes, runs, productions
    added and removed) and compare the matches with the brute-force oracle after every
    step; finally remove every production and check that the network is empty."""
    net = ReteNetwork()
    specs: dict[str, list[list[tuple[Any, ...]]]] = {}
    prods: dict[str, Production] = {}
    counter = 0

    def add_prod(alts: list[list[tuple[Any, ...]]]) -> None:
        nonlocal counter
        name = f"p{counter}"
        counter += 1
        prods[name] = build_production(name, alts)
        specs[name] = alts
        net.add_production(prods[name])

    for alts in initial:
        add_prod(alts)
    if on_built is not None:
        on_built(net)
    facts: list[Fact] = []
    assert engine(net) == oracle(specs, facts)
    for op in ops:
        kind = op[0]
        before = list(net.matches)
        fired_before = {m for m in before if m.fired}
        if kind in FACT_CHANGES:
            n_facts = len(facts)
            apply_fact_op(net, facts, op)
            # A fact change never makes a fired match: a match it re-made (withdrawn and
            # re-created, or renewed in place with new values) is a new activation.
            assert {m for m in net.matches if m.fired} <= fired_before
            if kind == "update" and op[2] == "z" and len(facts) == n_facts:
                # No rule tests "z": every match stays in place, fired ones stay fired.
                assert list(net.matches) == before
                assert {m for m in net.matches if m.fired} == fired_before
        elif kind == "run":
            net.run(op[1])
            assert all(m.fired for m in net.matches if m not in list(net.new_matches))
        elif kind == "addprod":
            add_prod(op[1])
        elif kind == "removeprod" and prods:
            name = sorted(prods)[op[1] % len(prods)]
            net.remove_production(prods.pop(name))
            del specs[name]
        assert engine(net) == oracle(specs, facts), op
        assert len(net.agenda) == len(list(net.new_matches))  # the count run() trusts
        # What matches reads instead of every production node: exactly those with matches.
        every = [pn for pns in net._prods.values() for pn in pns]
        assert set(net.agenda.holding) == {pn for pn in every if pn.items}
    # Removing everything leaves an empty network.
    for p in list(prods.values()):
        net.remove_production(p)
    assert net.stats()["beta_nodes"] == 1
    assert net.stats()["alpha_memories"] == 0


@given(
    st.lists(production_spec(), min_size=1, max_size=3),
    st.lists(operation, min_size=6, max_size=30),
    st.sampled_from([0, 1, beta.SMALL]),
)
def test_matches_equal_brute_force(
    initial: list[list[list[tuple[Any, ...]]]], ops: list[tuple[Any, ...]], small: int
) -> None:
    # ``small``: the size above which a beta memory keeps its indexes (0: always, once it
    # has a token; 1: they are filled and dropped often; the default: mostly scanned).
    with patch.object(beta, "SMALL", small):
        run_against_oracle(initial, ops)


# Productions chosen to exercise each node kind hard (the random ones above cover their
# combinations): joins, NOT / NCC / EXISTS unblocking on retract and modify, accumulate
# groups appearing and disappearing, OR, Bind, self-joins on one alpha memory.
P = ("pat", "A", {"x": ("v", "p")}, None)
CURATED: list[list[list[tuple[Any, ...]]]] = [
    [[P, ("not", [("pat", "B", {"x": ("v", "p")}, None)])]],
    [
        [
            P,
            (
                "not",
                [
                    ("pat", "B", {"x": ("v", "p"), "y": ("v", "q")}, None),
                    ("pat", "A", {"y": ("v", "q")}, None),
                ],
            ),
        ]
    ],
    [[P, ("exists", [("pat", "B", {"y": ("v", "p")}, None)])]],
    [
        [
            P,
            (
                "exists",
                [("pat", "B", {"x": ("v", "p")}, None), ("filter", ("p",), FILTERS[("p",)][0])],
            ),
        ]
    ],
    [
        [
            ("pat", "A", {"x": ("v", "p"), "y": ("v", "q")}, "f0"),
            ("pat", "A", {"x": ("v", "q")}, None),
        ]
    ],
    [
        [
            ("pat", "B", {"y": ("v", "p")}, None),
            (
                "acc",
                "count",
                None,
                ("pat", "A", {"x": ("v", "p"), "y": ("v", "q")}, None),
                "n",
                ("q",),
            ),
        ]
    ],
    [
        [
            ("pat", "B", {"x": ("v", "p")}, None),
            ("acc", "sum", "q", ("pat", "A", {"x": ("v", "p"), "y": ("v", "q")}, None), "n", ()),
        ]
    ],
    [[("acc", "min", "q", ("pat", "B", {"y": ("v", "q")}, None), "n", ()), P]],
    [
        [
            (
                "acc",
                "collect",
                "q",
                ("pat", "A", {"y": ("v", "q"), "x": ("v", "r")}, None),
                "n",
                ("r",),
            )
        ]
    ],
    [
        [P, ("bind", ("p",), BINDS[("p",)], "q"), ("pat", "B", {"x": ("v", "q")}, None)],
        [("pat", "B", {"y": ("c", 1)}, "f1")],
    ],
    [
        [
            P,
            ("not", [("pat", "B", {"x": ("v", "p")}, None)]),
            ("not", [("pat", "B", {"y": ("v", "p")}, None)]),
            ("pat", "B", {}, None),
        ]
    ],
]
FACT_OPS = ["add"] * 5 + ["remove"] * 4 + ["update"] * 5 + ["update_untested", "run"]
fact_operation = st.sampled_from(FACT_OPS).flatmap(lambda k: OPS[k])


@given(st.lists(fact_operation, min_size=5, max_size=40))
def test_curated_productions_equal_brute_force(ops: list[tuple[Any, ...]]) -> None:
    net = ReteNetwork()
    specs = {f"c{i}": alts for i, alts in enumerate(CURATED)}
    for name, alts in specs.items():
        net.add_production(build_production(name, alts))
    facts: list[Fact] = []
    for op in ops:
        kind = op[0]
        if kind in FACT_CHANGES:
            apply_fact_op(net, facts, op)
        elif kind == "run":
            net.run(op[1])
        assert engine(net) == oracle(specs, facts), op


# -- the cross join: productions ending in patterns that share no variable ---------------


@st.composite
def tail_production(draw: Any) -> list[list[tuple[Any, ...]]]:
    """A connected start (a pattern, then up to two more conditions) and a tail of two or
    three patterns of distinct types sharing no variable with anything: what a cross join
    takes (``rete/cross.py``). Tail variables are fresh names, some patterns bound with
    ``<<``; their constants make facts move in and out of the tail's memories."""
    bound: set[str] = set()
    first = draw(pattern(bound))
    bound |= pat_vars(first)
    rest = draw(conjunction(bound, 0, draw(st.integers(0, 2))))
    kinds = draw(st.permutations(["A", "B", "C"]))[: draw(st.integers(2, 3))]
    tail = []
    for i, tname in enumerate(kinds):
        slots: dict[str, tuple[str, Any]] = {}
        for attr in ATTRS:
            kind = draw(st.sampled_from(["absent", "const", "var"]))
            if kind == "const":
                slots[attr] = ("c", draw(st.sampled_from(VALUES)))
            elif kind == "var":
                slots[attr] = ("v", f"t{i}{attr}")
        bind = f"g{i}" if draw(st.booleans()) else None
        tail.append(("pat", tname, slots, bind))
    return [[first, *rest, *tail]]


TAIL_OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    **OPS,
    "add": st.tuples(st.just("add"), st.sampled_from(sorted(KNOWN)), full_values),
    "add_partial": st.tuples(st.just("add"), st.sampled_from(sorted(KNOWN)), some_values),
}
TAIL_KINDS = ["add"] * 6 + ["add_partial"] + ["remove"] * 4 + ["update"] * 10
TAIL_KINDS += ["update_untested", "run", "run", "addprod", "removeprod"]
tail_operation = st.sampled_from(TAIL_KINDS).flatmap(
    lambda k: st.tuples(st.just("addprod"), tail_production()) if k == "addprod" else TAIL_OPS[k]
)


@given(
    st.lists(tail_production(), min_size=1, max_size=3),
    st.lists(tail_operation, max_size=40),
    st.sampled_from([0, beta.SMALL]),
)
def test_cross_join_tails_equal_brute_force(
    initial: list[list[list[tuple[Any, ...]]]], ops: list[tuple[Any, ...]], small: int
) -> None:
    from hypothesis import event

    from streamrules.rete.cross import CrossJoinNode

    def count_cross(net: ReteNetwork) -> None:
        event(f"cross joins: {sum(isinstance(n, CrossJoinNode) for n in net.nodes())}")

    with patch.object(beta, "SMALL", small):
        run_against_oracle(initial, ops, count_cross)
