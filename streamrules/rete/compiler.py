"""Rule compiler (between authoring and matching): turns a production's conditions into
network nodes, sharing every node it can with the productions already there.

Conditions are first put in disjunctive normal form (one branch per OR alternative, as
py-rete does); each branch is then built left to right. Variables get fixed slots in the
token's ``binds`` tuple: a positive pattern appends the fact and the values of the
variables it binds first, a Bind or an accumulate appends its result.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamrules.errors import RuleError
from streamrules.rete.accumulate import AccumulateNode
from streamrules.rete.alpha import AlphaMemory
from streamrules.rete.beta import BetaMemory, BindNode, FilterNode, JoinNode, Node, PNode
from streamrules.rete.conditions import AND, EXISTS, NOT, OR, Accumulate, Bind, Filter, V
from streamrules.rete.cross import CrossJoinNode
from streamrules.rete.fact import SELF, Fact, pattern_bind
from streamrules.rete.negative import NccNode, NccPartner, NegativeNode

if TYPE_CHECKING:
    from streamrules.rete.network import ReteNetwork
    from streamrules.rete.production import Production

NET_ARG = -1
OTHER_ARG = -2
GEN_PREFIX = "_rete_"


class _Neg:
    """A negated (or, with ``exists``, existentially quantified) conjunction."""

    __slots__ = ("branch", "exists")

    def __init__(self, branch: list[Any], exists: bool) -> None:
        self.branch = branch
        self.exists = exists

    def __repr__(self) -> str:
        inner = " & ".join(map(repr, self.branch))
        return f"{'EXISTS' if self.exists else 'NOT'}({inner})"


def dnf(cond: Any, prod: str) -> list[list[Any]]:
    """Disjunctive normal form: a list of branches, each a list of elementary conditions."""
    if cond is None:
        return [[]]
    if isinstance(cond, (Fact, Filter, Bind, Accumulate)):
        return [[cond]]
    if isinstance(cond, OR):
        out: list[list[Any]] = []
        for c in cond:
            out.extend(dnf(c, prod))
        return out
    if isinstance(cond, AND):
        branches: list[list[Any]] = [[]]
        for c in cond:
            sub = dnf(c, prod)
            branches = [b + s for b in branches for s in sub]
        return branches
    if isinstance(cond, (NOT, EXISTS)):
        if not cond:
            raise RuleError(f"{type(cond).__name__}() needs a condition", production=prod)
        inner = dnf(AND(*cond), prod)
        if isinstance(cond, NOT):
            return [[_Neg(b, False) for b in inner]]
        if len(inner) == 1:
            return [[_Neg(inner[0], True)]]
        # EXISTS(a | b) = NOT(NOT a & NOT b): one match however many alternatives hold.
        return [[_Neg([_Neg(b, False) for b in inner], False)]]
    if isinstance(cond, (list, tuple)):
        return dnf(AND(*cond), prod)
    raise RuleError(f"not a condition: {cond!r}", production=prod)


def _names(el: Any) -> set[str] | None:
    """The variable names a condition mentions (None: it cannot be moved past safely)."""
    if isinstance(el, Fact):
        out: set[str] = set()
        b = pattern_bind(el)
        if b is not None:
            out.add(b.name)
        for v in el.values():
            if isinstance(v, V):
                out.add(v.name)
            elif isinstance(v, Fact):
                inner = _names(v)
                assert inner is not None
                out |= inner
        return out
    if isinstance(el, _Neg):
        out = set()
        for sub in el.branch:
            inner = _names(sub)
            if inner is None:
                return None
            out |= inner
        return out
    if isinstance(el, (Filter, Bind)):
        try:
            params = set(inspect.signature(el.fn).parameters)
        except (TypeError, ValueError):
            return None
        if not params:
            return None  # a test of nothing runs where it stands: keep everything in place
        if isinstance(el, Bind):
            params.add(el.to.name)
        return params
    if isinstance(el, Accumulate):
        inner = _names(el.pattern)
        if inner is None:
            return None
        extra = {el.into, *el.group_by}
        if el.value is not None:
            extra.add(el.value)
        return inner | extra
    return None


def join_order(elements: list[Any]) -> list[int]:
    """The order in which a branch's conditions are built: as written, except that a
    positive pattern sharing no variable with any other condition is joined last.

    Such a pattern (typically a control fact like ``Context(state="assign")`` or a
    counter) only multiplies the matches; placed first, every change to it rebuilds all
    the partial matches below it, placed last only the complete ones (the "volatile and
    unconnected patterns last" advice of OPS5 and CLIPS). The set of matches is the same.
    """
    lonely = lonely_patterns(elements)
    if not lonely:
        return list(range(len(elements)))
    last = set(lonely)
    return [i for i in range(len(elements)) if i not in last] + lonely


def lonely_patterns(elements: list[Any]) -> list[int]:
    """The positions of the positive patterns that share no variable with any other
    condition (``join_order`` builds them last)."""
    names = [_names(el) for el in elements]
    if any(n is None for n in names):
        return []
    used: dict[str, int] = {}
    for n in names:
        for name in n:  # type: ignore[union-attr]
            used[name] = used.get(name, 0) + 1
    return [
        i
        for i, el in enumerate(elements)
        if isinstance(el, Fact) and all(used[name] == 1 for name in names[i])  # type: ignore[union-attr]
    ]


@dataclass
class _Pat:
    cls: type
    consts: list[tuple[Any, Any]]
    vars: list[tuple[Any, str]]
    bind: str | None
    src: Fact


def parse_pattern(p: Fact, gen: Callable[[], str], prod: str) -> list[_Pat]:
    """A pattern, preceded by the patterns of the facts nested in it."""
    pats: list[_Pat] = []
    consts: list[tuple[Any, Any]] = []
    variables: list[tuple[Any, str]] = []
    for k, v in p.items():
        if isinstance(k, V):
            raise RuleError(
                "a variable cannot stand for an attribute name", production=prod, condition=repr(p)
            )
        if isinstance(v, V):
            variables.append((k, v.name))
        elif isinstance(v, Fact):
            inner = parse_pattern(v, gen, prod)
            last = inner[-1]
            if last.bind is None:
                last.bind = gen()
            pats.extend(inner)
            variables.append((k, last.bind))
        else:
            consts.append((k, v))
    b = pattern_bind(p)
    pats.append(_Pat(type(p), consts, variables, b.name if b is not None else None, p))
    return pats


@dataclass
class Info:
    """What a production node needs to present and fire its matches."""

    var_slots: dict[str, int]
    fact_slots: tuple[int, ...]
    plan: list[tuple[str, int, bool]]


@dataclass
class _State:
    node: Node
    slots: dict[str, int] = field(default_factory=dict)
    n: int = 0
    fact_slots: list[int] = field(default_factory=list)
    levels: int = 0
    wme_join: dict[int, JoinNode] = field(default_factory=dict)

    def copy(self) -> _State:
        return _State(
            self.node, dict(self.slots), self.n, list(self.fact_slots), 0, dict(self.wme_join)
        )


class Compiler:
    """Builds (or shares) the nodes of one production in one network."""

    def __init__(self, net: ReteNetwork, prod: Production) -> None:
        self.net = net
        self.prod = prod
        self.name = prod.name
        self.created: list[Node] = []

    # -- helpers -------------------------------------------------------------------------

    def _gen(self) -> str:
        self.net._gen += 1
        return f"{GEN_PREFIX}{self.net._gen}"

    def _amem(self, pat: _Pat) -> AlphaMemory:
        first: dict[str, Any] = {}
        intra: list[tuple[Any, Any]] = []
        for attr, name in pat.vars:
            if name in first:
                intra.append((first[name], attr))
            else:
                first[name] = attr
        required = frozenset(a for a, _ in pat.vars)
        return self.net.alpha.get(
            pat.cls, tuple(pat.consts), required, tuple(intra), iter(self.net._wmes_of(pat.cls))
        )

    def _attach(self, parent: Node, node: Node, key: Any) -> Node:
        parent.share[key] = node
        if not isinstance(node, JoinNode):  # (a join adds itself, linked or not)
            parent.add_child(node)
        self.created.append(node)
        return node

    def _populate(self, parent: Node, node: Node) -> None:
        parent.replay(node.left)

    def _ensure_bm(self, s: _State) -> BetaMemory:
        if isinstance(s.node, BetaMemory):
            return s.node
        parent = s.node
        bm = parent.share.get(("bm",))
        if bm is None:
            bm = self._attach(parent, BetaMemory(self.net, parent), ("bm",))
            self._populate(parent, bm)
        s.levels += 1
        s.node = bm
        return bm  # type: ignore[return-value]

    def _keys(self, s: _State, pat: _Pat) -> tuple[list[int], list[Any], dict[str, Any]]:
        """Join keys (left slots, right attributes) and the pattern's own variables
        (name -> attribute of their first occurrence; the fact itself for ``<<``)."""
        own: dict[str, Any] = {}
        if pat.bind is not None:
            own[pat.bind] = SELF
        for attr, name in pat.vars:
            if name == pat.bind:
                raise RuleError(
                    f"variable {name!r} names both a fact and a value",
                    production=self.name,
                    condition=repr(pat.src),
                )
            own.setdefault(name, attr)
        lkeys: list[int] = []
        rkeys: list[Any] = []
        for name, attr in own.items():
            if name in s.slots:
                lkeys.append(s.slots[name])
                rkeys.append(attr)
        return lkeys, rkeys, own

    # -- conditions ----------------------------------------------------------------------

    def branch(self, s: _State, elements: list[Any], top: bool) -> None:
        for el in elements:
            if isinstance(el, Fact):
                for pat in parse_pattern(el, self._gen, self.name):
                    self.positive(s, pat, top)
            elif isinstance(el, _Neg):
                self.negated(s, el)
            elif isinstance(el, Filter):
                self.filter(s, el)
            elif isinstance(el, Bind):
                self.bind(s, el)
            elif isinstance(el, Accumulate):
                self.accumulate(s, el)
            else:  # pragma: no cover - dnf() lets nothing else through
                raise RuleError(f"not a condition: {el!r}", production=self.name)

    def positive(self, s: _State, pat: _Pat, top: bool) -> None:
        amem = self._amem(pat)
        lkeys, rkeys, own = self._keys(s, pat)
        ext: list[Any] = [SELF]
        new_names: list[str] = []
        for name, attr in own.items():
            if name in s.slots or attr is SELF:
                continue
            ext.append(attr)
            new_names.append(name)
        bm = self._ensure_bm(s)
        key = ("join", amem, tuple(lkeys), tuple(rkeys), tuple(ext))
        j = bm.share.get(key)
        if j is None:
            j = self._attach(
                bm, JoinNode(self.net, bm, amem, tuple(lkeys), tuple(rkeys), tuple(ext)), key
            )
        wslot = s.n
        if pat.bind is not None and pat.bind not in s.slots:
            s.slots[pat.bind] = wslot
        for i, name in enumerate(new_names):
            s.slots[name] = wslot + 1 + i
        s.n += len(ext)
        s.wme_join[wslot] = j  # type: ignore[assignment]
        if top:
            s.fact_slots.append(wslot)
        s.node = j

    def negated(self, s: _State, neg: _Neg) -> None:
        br = neg.branch
        if (
            len(br) == 1
            and isinstance(br[0], Fact)
            and not any(isinstance(v, Fact) for v in br[0].values())
        ):
            pat = parse_pattern(br[0], self._gen, self.name)[0]
            amem = self._amem(pat)
            lkeys, rkeys, _ = self._keys(s, pat)
            key = ("neg", amem, tuple(lkeys), tuple(rkeys), neg.exists)
            node = s.node.share.get(key)
            if node is None:
                node = self._attach(
                    s.node,
                    NegativeNode(self.net, s.node, amem, tuple(lkeys), tuple(rkeys), neg.exists),
                    key,
                )
                self._populate(s.node, node)
            s.node = node
            s.levels += 1
            return
        parent = s.node
        sub = s.copy()
        self.branch(sub, br, top=False)
        partner = NccPartner(self.net, sub.node, sub.levels, drop_wme=parent.stores)
        self._attach(sub.node, partner, ("partner", partner.nid))
        self._populate(sub.node, partner)
        ncc = NccNode(self.net, parent, partner, neg.exists)
        if isinstance(parent, BetaMemory):
            parent.nccs.append(ncc)
        self._attach(parent, ncc, ("ncc", ncc.nid))
        self._populate(parent, ncc)
        s.node = ncc
        s.levels += 1

    def _arg_slots(self, s: _State, fn: Callable[..., Any], what: str) -> tuple[int, ...]:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError) as exc:
            err = RuleError(
                f"cannot read the parameters of {what}", production=self.name, condition=what
            )
            err.__cause__ = exc  # (not ``raise ... from``: a mypyc build drops the cause)
            raise err  # noqa: B904 (the cause is set above)
        slots: list[int] = []
        for p in params:
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if p.name in s.slots:
                slots.append(s.slots[p.name])
            elif p.default is inspect.Parameter.empty:
                raise RuleError(
                    f"{what} uses variable {p.name!r} before any condition binds it",
                    production=self.name,
                    condition=what,
                )
            else:
                break
        for i in slots:
            j = s.wme_join.get(i)
            if j is not None and not j.reads_all:
                # The test reads the whole fact: any change to it must re-run the test.
                j.reads_all = True
                j.amem.wild += 1  # type: ignore[union-attr]
        return tuple(slots)

    def filter(self, s: _State, f: Filter) -> None:
        what = repr(f)
        slots = self._arg_slots(s, f.fn, what)
        key = ("filter", f.fn, slots)
        node = s.node.share.get(key)
        if node is None:
            node = self._attach(
                s.node, FilterNode(self.net, s.node, f.fn, slots, (self.name, what)), key
            )
            self._populate(s.node, node)
        s.node = node

    def bind(self, s: _State, b: Bind) -> None:
        what = repr(b)
        slots = self._arg_slots(s, b.fn, what)
        target = b.to.name
        if target in s.slots:
            fn = b.fn
            n = len(slots)

            def same_as_bound(*args: Any) -> bool:
                return bool(fn(*args[:n]) == args[n])

            slots2 = (*slots, s.slots[target])
            key: Any = ("bindtest", fn, slots2)
            node = s.node.share.get(key)
            if node is None:
                node = self._attach(
                    s.node,
                    FilterNode(self.net, s.node, same_as_bound, slots2, (self.name, what)),
                    key,
                )
                self._populate(s.node, node)
            s.node = node
            return
        key = ("bind", b.fn, slots)
        node = s.node.share.get(key)
        if node is None:
            node = self._attach(
                s.node, BindNode(self.net, s.node, b.fn, slots, (self.name, what)), key
            )
            self._populate(s.node, node)
        s.slots[target] = s.n
        s.n += 1
        s.node = node

    def accumulate(self, s: _State, acc: Accumulate) -> None:
        what = repr(acc)
        pats = parse_pattern(acc.pattern, self._gen, self.name)
        if len(pats) != 1:
            raise RuleError(
                "facts nested in an accumulate pattern are not supported",
                production=self.name,
                condition=what,
            )
        pat = pats[0]
        if acc.into in s.slots:
            raise RuleError(
                f"accumulate result {acc.into!r} is already bound",
                production=self.name,
                condition=what,
            )
        amem = self._amem(pat)
        lkeys, rkeys, own = self._keys(s, pat)
        group_keys: list[Any] = []
        for g in acc.group_by:
            if g not in own:
                raise RuleError(
                    f"group_by variable {g!r} is not a variable of the pattern",
                    production=self.name,
                    condition=what,
                )
            group_keys.append(own[g])
        value_key: Any = None
        if acc.kind != "count":
            if acc.value is None:
                value_key = SELF
            elif acc.value in own:
                value_key = own[acc.value]
            else:
                raise RuleError(
                    f"aggregated variable {acc.value!r} is not bound by the pattern",
                    production=self.name,
                    condition=what,
                )
        key = ("acc", amem, tuple(lkeys), tuple(rkeys), acc.kind, value_key, tuple(group_keys))
        node = s.node.share.get(key)
        if node is None:
            node = self._attach(
                s.node,
                AccumulateNode(
                    self.net,
                    s.node,
                    amem,
                    tuple(lkeys),
                    tuple(rkeys),
                    acc.kind,
                    value_key,
                    tuple(group_keys),
                    (self.name, what),
                ),
                key,
            )
            self._populate(s.node, node)
        s.slots[acc.into] = s.n
        for i, g in enumerate(acc.group_by):
            if g not in s.slots:
                s.slots[g] = s.n + 1 + i
        s.n += 1 + len(acc.group_by)
        s.levels += 2
        s.node = node

    def production(self, elements: list[Any], order: int) -> PNode:
        s = _State(self.net.root)
        built = join_order(elements)
        tail = self._cross_tail(elements)
        spans: list[tuple[int, list[int]]] = []
        for pos in built:
            if pos in tail:
                continue
            before = len(s.fact_slots)
            self.branch(s, [elements[pos]], top=True)
            spans.append((pos, s.fact_slots[before:]))
        if tail:
            spans.extend(self.cross(s, tail))
        # Match.facts keeps the order the conditions were written in.
        s.fact_slots = [slot for _, slots in sorted(spans) for slot in slots]
        plan: list[tuple[str, int, bool]] = []
        for name, has_default in self.prod.params:
            if name == "net":
                plan.append((name, NET_ARG, has_default))
            elif name in s.slots:
                plan.append((name, s.slots[name], has_default))
            else:
                plan.append((name, OTHER_ARG, has_default))
        info = Info(
            {k: v for k, v in s.slots.items() if not k.startswith(GEN_PREFIX)},
            tuple(s.fact_slots),
            plan,
        )
        pn = PNode(self.net, s.node, self.prod, info)
        pn.order = order
        self._attach(s.node, pn, ("pnode", pn.nid))
        if isinstance(s.node, CrossJoinNode):
            s.node.fill(pn)
        else:
            self._populate(s.node, pn)
        return pn

    def _cross_tail(self, elements: list[Any]) -> dict[int, _Pat]:
        """The patterns a cross join takes (``cross.py``), by position: the lonely
        patterns when there are two or more, each one plain pattern (no nested facts),
        of distinct fact types. Empty when that does not hold."""
        lonely = lonely_patterns(elements)
        if len(lonely) < 2:
            return {}
        tail: dict[int, _Pat] = {}
        for pos in lonely:
            pats = parse_pattern(elements[pos], self._gen, self.name)
            if len(pats) != 1:
                return {}
            tail[pos] = pats[0]
        if len({p.cls for p in tail.values()}) != len(tail):
            return {}
        return tail

    def cross(self, s: _State, tail: dict[int, _Pat]) -> list[tuple[int, list[int]]]:
        """Join the lonely patterns in one cross join; their facts' slots by position."""
        bm = self._ensure_bm(s)
        amems: list[AlphaMemory] = []
        exts: list[tuple[Any, ...]] = []
        wslots: list[int] = []
        spans: list[tuple[int, list[int]]] = []
        for pos, pat in tail.items():
            amems.append(self._amem(pat))
            _, _, own = self._keys(s, pat)  # no join keys: the pattern shares nothing
            ext: list[Any] = [SELF]
            wslot = s.n
            if pat.bind is not None:
                s.slots[pat.bind] = wslot
            for name, attr in own.items():
                if attr is not SELF:
                    s.slots[name] = wslot + len(ext)
                    ext.append(attr)
            s.n += len(ext)
            exts.append(tuple(ext))
            wslots.append(wslot)
            s.fact_slots.append(wslot)
            spans.append((pos, [wslot]))
        node = CrossJoinNode(self.net, bm, tuple(amems), tuple(exts), tuple(wslots))
        self._attach(bm, node, ("cross", node.nid))
        s.node = node
        return spans
