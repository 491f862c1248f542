"""Beta network (engine stage 2): the cross-product join that ends a production whose last
patterns share no variable with anything (a control fact, a counter).

``join_order`` puts such patterns last. Joined one by one, each of them would add a level of
partial matches: ``Context(...) & Count(...)`` after the connected part makes a token per
partial match for the context and another for the count, and every change of the context
rebuilds both levels (Miss Manners spends most of its time there). This node joins all of
them in one step: the match is the partial match above it extended by one fact of each
memory, so each complete match is one token, kept by the production node below.

Such a token belongs to several facts: it is in the ``tokens`` of each (its ``wme`` is
None), and the production node takes it out of all of them when it is deleted. The
patterns are of distinct fact types, so a fact reaches this node through one memory only.
The node is never shared and never unlinked (an empty memory makes its activations return
at once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import product
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from streamrules.rete.alpha import AlphaMemory, make_getter
from streamrules.rete.beta import BetaMemory, Node, PlainNode, PNode
from streamrules.rete.fact import SELF, WME
from streamrules.rete.tokens import Emit, Token, tokens_of

if TYPE_CHECKING:
    from streamrules.rete.network import ReteNetwork

__all__ = ["CrossJoinNode"]

Combo = tuple[WME, ...]
# A combination of facts, what it adds to the bindings, the tag of its newest fact.
Prepared = tuple[Combo, tuple[Any, ...], int]


def _self_only(d: dict[Any, Any]) -> tuple[Any, ...]:
    return (d[SELF],)


class CrossJoinNode(PlainNode):
    """Joins each partial match with every combination of one fact per memory."""

    __slots__ = ("_facts_of", "amems", "exts", "pos", "reads_all", "reads_by", "wslots")
    kind = "join"  # it plays a join's part in a modify (``src`` of its tokens, rebind)

    def __init__(
        self,
        net: ReteNetwork,
        parent: BetaMemory,
        amems: tuple[AlphaMemory, ...],
        ext_keys: tuple[tuple[Any, ...], ...],
        wslots: tuple[int, ...],
    ) -> None:
        super().__init__(net, parent)
        self.amems = amems
        # Per memory: the values appended to the bindings (the fact first), as one tuple.
        self.exts: tuple[Callable[[dict[Any, Any]], tuple[Any, ...]], ...] = tuple(
            _self_only if keys == (SELF,) else make_getter(keys) for keys in ext_keys
        )
        # The position of each memory by fact type (the types are distinct), and the
        # attributes each memory's facts are read for.
        self.pos = {a.cls: i for i, a in enumerate(amems)}
        self.reads_by = {
            a: frozenset(k for k in keys if k is not SELF)
            for a, keys in zip(amems, ext_keys, strict=True)
        }
        self.reads_all = False
        self.wslots = wslots  # where each memory's fact sits in the bindings
        self._facts_of: Callable[[tuple[Any, ...]], Combo] = itemgetter(*wslots)
        for a in amems:
            a.nodes[self] = None
            a.link(self)

    # -- the combinations ------------------------------------------------------------------

    def _prepare(self, fixed: int = -1, w: WME | None = None) -> list[Prepared]:
        """Every combination of one fact per memory (``w`` at position ``fixed``), with
        what it adds to a partial match's bindings and its newest fact's tag: worked out
        once per activation, not once per partial match."""
        lists: list[tuple[WME, ...]] = [
            (w,) if i == fixed and w is not None else tuple(a.items)
            for i, a in enumerate(self.amems)
        ]
        out: list[Prepared] = []
        exts = self.exts
        for combo in product(*lists):
            ext: tuple[Any, ...] = ()
            tag = 0
            for get, x in zip(exts, combo, strict=True):
                ext += get(x.data)
                if x.tag > tag:
                    tag = x.tag
            out.append((combo, ext, tag))
        return out

    def _emit(self, tokens: Iterable[Token], prepared: list[Prepared]) -> None:
        kids = self.kids
        for t in tokens:
            b = t.binds
            r = t.recency
            for combo, ext, tag in prepared:
                nb = b + ext
                for c in kids:
                    c.left_cross(t, combo, nb, tag if tag > r else r)  # type: ignore[attr-defined]

    # -- activations -------------------------------------------------------------------------

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        for a in self.amems:
            if not a.items:
                return
        self._emit((parent,), self._prepare())

    def right(self, w: WME) -> None:
        items = self.parent.items  # type: ignore[union-attr]
        if not items:
            return
        fixed = self.pos[w.cls]
        for i, a in enumerate(self.amems):
            if i != fixed and not a.items:
                return
        # Safe to iterate in place: what this adds lies below this node.
        self._emit(items, self._prepare(fixed, w))

    def fill(self, pn: PNode) -> None:
        """Give a newly built production node the matches there are now."""
        prepared = self._prepare()
        for t in list(self.parent.items):  # type: ignore[union-attr]
            for combo, ext, tag in prepared:
                pn.left_cross(t, combo, t.binds + ext, max(tag, t.recency))

    def replay(self, emit: Emit) -> None:  # pragma: no cover - never shared (see fill)
        raise NotImplementedError("a cross join feeds only its own production node")

    # -- a modify ------------------------------------------------------------------------------

    def reads_changed(self, changed: set[Any], amem: AlphaMemory) -> bool:
        return self.reads_all or not self.reads_by[amem].isdisjoint(changed)

    def rebinds(self, changed: set[Any]) -> bool:
        """Always: it tests nothing, and only production nodes are below it."""
        return not self.reads_all

    def rebind(self, w: WME) -> None:
        """As ``JoinNode.rebind``: the matches with ``w`` renewed in place, in the order
        ``right`` would re-make them. Each is found among its parent's children (every
        match with ``w`` is met again: ``w`` is in the same memory, the other facts have
        not changed), so a modify keeps no table of them."""
        prepared = self._prepare(self.pos[w.cls], w)
        kids = self.kids
        facts_of = self._facts_of
        for t in self.parent.items:  # type: ignore[union-attr]
            b = t.binds
            r = t.recency
            ch = t.children
            mine: dict[tuple[Node, Combo], Token] | None = None
            if ch is t:  # the root token keeps no children: the fact's tokens then
                ch = {x: None for x in tokens_of(w) if x.parent is t}
            if isinstance(ch, dict):
                mine = {(x.node, facts_of(x.binds)): x for x in ch if x.node in kids}
            for combo, ext, tag in prepared:
                nb = b + ext
                r2 = tag if tag > r else r
                for c in kids:
                    if mine is not None:
                        x = mine.get((c, combo))
                    elif ch is not None and ch.node is c and facts_of(ch.binds) == combo:
                        x = ch
                    else:
                        x = None
                    if x is None or x.dead:
                        c.left_cross(t, combo, nb, r2)  # type: ignore[attr-defined]
                    else:
                        c.renew_cross(x, nb, r2)  # type: ignore[attr-defined]

    # -- structure -------------------------------------------------------------------------------

    def inputs(self) -> tuple[AlphaMemory, ...]:
        return self.amems

    def destroy(self) -> None:
        super().destroy()
        for a in self.amems:
            a.nodes.pop(self, None)
            a.unlink(self)

    def label(self) -> str:
        return "cross join " + " x ".join(repr(a) for a in self.amems)
