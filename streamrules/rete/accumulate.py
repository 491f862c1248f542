"""Accumulate node (engine stage 2, beta network): Count, Sum, Min, Max and Collect over
the facts matching a pattern, grouped by variables, maintained incrementally.

For each left token (the owner) the node keeps one group per group key; a group holds its
facts and a running aggregate. Inserting or retracting a fact updates only the groups of
the owners it joins with (found through hash indexes); when a group's value changes the
group's result token (and so every match below it) is replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from streamrules.rete.alpha import AlphaMemory, idx_get
from streamrules.rete.fact import SELF, WME, Items, freeze
from streamrules.rete.negative import _CountingNode
from streamrules.rete.tokens import Emit, Token, kill

if TYPE_CHECKING:
    from streamrules.rete.network import ReteNetwork

_EMPTY = {"count": 0, "sum": 0, "min": None, "max": None, "collect": ()}


class Group:
    """The facts of one (owner, group key) pair and their aggregate."""

    __slots__ = ("best", "gvals", "items", "key", "max_tag", "nonint", "result", "rtoken", "total")

    def __init__(self, key: Any, gvals: tuple[Any, ...], kind: str) -> None:
        self.key = key
        self.gvals = gvals
        self.items: dict[WME, Any] = Items()
        self.result: Any = _EMPTY[kind]
        self.rtoken: Token | None = None
        self.max_tag = 0
        self.total: Any = 0
        self.nonint = 0
        self.best: Any = None


def same(a: Any, b: Any) -> bool:
    """Whether an aggregate value is unchanged (facts compare by identity)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


def _user(v: Any) -> Any:
    return v.fact if type(v) is WME else v


class AccumulateNode(_CountingNode):
    """Aggregates the facts of an alpha memory per left token and group."""

    __slots__ = ("agg", "gget", "grouped", "ngroup", "vget", "what")
    kind = "accumulate"

    def __init__(
        self,
        net: ReteNetwork,
        parent: Any,
        amem: AlphaMemory,
        lkeys: tuple[int, ...],
        rkeys: tuple[Any, ...],
        agg: str,
        value_key: Any,
        group_keys: tuple[Any, ...],
        what: tuple[str, str],
    ) -> None:
        super().__init__(net, parent)
        self.exists = False
        self.setup(amem, lkeys, rkeys)
        self.agg = agg
        self.what = what
        self.ngroup = len(group_keys)
        self.grouped = bool(group_keys)
        self.gget: Callable[[Any], Any] | None = itemgetter(*group_keys) if group_keys else None
        self.vget: Callable[[Any], Any] | None = (
            itemgetter(value_key) if value_key is not None else None
        )
        extra = {value_key} if value_key is not None and value_key is not SELF else set()
        self.reads = self.reads | frozenset(group_keys) | frozenset(extra)

    # -- group maintenance -------------------------------------------------------------

    def _group(self, groups: dict[Any, Group], w: WME, create: bool) -> Group | None:
        gget = self.gget
        if gget is None:
            key: Any = ()
            gvals: tuple[Any, ...] = ()
        else:
            raw = gget(w.data)
            gvals = (raw,) if self.ngroup == 1 else raw
            key = raw
        try:
            g = groups.get(key)
        except TypeError:
            key = freeze(key)
            g = groups.get(key)
        if g is None and create:
            g = groups[key] = Group(key, gvals, self.agg)
        return g

    def _add(self, g: Group, w: WME) -> None:
        v = self.vget(w.data) if self.vget is not None else w
        g.items[w] = v
        if w.tag > g.max_tag:
            g.max_tag = w.tag
        agg = self.agg
        if agg == "count":
            g.result = len(g.items)
        elif agg == "sum":
            if type(v) is int or type(v) is bool:
                g.total += v
            else:
                g.nonint += 1
            g.result = self._sum(g)
        elif agg in ("min", "max"):
            try:
                if (
                    g.best is None
                    or len(g.items) == 1
                    or ((v < g.best) if agg == "min" else (v > g.best))
                ):
                    g.best = v
            except Exception as exc:
                self.net._user_error(exc, self.what)
            g.result = g.best
        else:
            g.result = self._collect(g)

    def _remove(self, g: Group, w: WME) -> None:
        v = g.items.pop(w)
        if w.tag == g.max_tag:
            g.max_tag = max((x.tag for x in g.items), default=0)
        agg = self.agg
        if agg == "count":
            g.result = len(g.items)
        elif agg == "sum":
            if type(v) is int or type(v) is bool:
                g.total -= v
            else:
                g.nonint -= 1
            g.result = self._sum(g)
        elif agg in ("min", "max"):
            if not g.items:
                g.best = None
            elif same(v, g.best):
                try:
                    vals = g.items.values()
                    g.best = min(vals) if agg == "min" else max(vals)
                except Exception as exc:
                    self.net._user_error(exc, self.what)
            g.result = g.best
        else:
            g.result = self._collect(g)

    def _sum(self, g: Group) -> Any:
        if g.nonint == 0:
            return g.total
        vals = [_user(x) for x in g.items.values()]
        try:
            if all(type(x) in (int, float, bool) for x in vals):
                # fsum is exact, so the result does not depend on insertion order.
                return math.fsum(vals)
            items = sorted(g.items.items(), key=lambda kv: kv[0].tag)
            total: Any = 0
            for _, x in items:
                total = total + _user(x)
            return total
        except Exception as exc:
            self.net._user_error(exc, self.what)
            return None

    def _collect(self, g: Group) -> tuple[Any, ...]:
        vals = [_user(x) for x in g.items.values()]
        try:
            return tuple(sorted(vals))
        except TypeError:
            pairs = sorted(g.items.items(), key=lambda kv: kv[0].tag)
            return tuple(_user(x) for _, x in pairs)

    # -- activations ---------------------------------------------------------------------

    def _emit(self, owner: Token, g: Group) -> None:
        r = Token(owner, None, self, (*owner.binds, g.result, *g.gvals))
        r.aux = g
        if g.max_tag > r.recency:
            r.recency = g.max_tag
        g.rtoken = r
        for c in self.kids:
            c.left(r, None, r.binds)

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        t = Token(parent, wme, self, binds)
        # An owner's groups are in ``aux`` (a result token's is its group): typed Any,
        # where ``count`` is an int (a compiled build stores it unboxed).
        groups: dict[Any, Group] = {}
        t.aux = groups
        self.store(t)
        if self.rix is None:
            bucket: Any = self.amem.items  # type: ignore[union-attr]
        else:
            bucket = idx_get(self.rix.map, self.lget(binds)) or ()
        for w in bucket:
            g = self._group(groups, w, True)
            self._add(g, w)  # type: ignore[arg-type]
        if not self.grouped and not groups:
            groups[()] = Group((), (), self.agg)
        for g in list(groups.values()):
            self._emit(t, g)

    def right(self, w: WME) -> None:
        for t in self.tokens_for(w):
            groups: dict[Any, Group] = t.aux
            g = self._group(groups, w, True)
            assert g is not None
            if w in g.items:
                continue
            old = g.result
            fresh = not g.items
            self._add(g, w)
            if fresh or g.rtoken is None or not same(old, g.result):
                if g.rtoken is not None:
                    kill(g.rtoken)
                self._emit(t, g)

    def right_remove(self, w: WME) -> None:
        for t in self.tokens_for(w):
            groups: dict[Any, Group] = t.aux
            g = self._group(groups, w, False)
            if g is None or w not in g.items:
                continue
            old = g.result
            self._remove(g, w)
            if self.grouped and not g.items:
                del groups[g.key]
                if g.rtoken is not None:
                    kill(g.rtoken)
                continue
            if not same(old, g.result):
                if g.rtoken is not None:
                    kill(g.rtoken)
                self.net._defer_call(self.emit_later, t, g)

    def emit_later(self, t: Token, g: Group) -> None:
        groups: dict[Any, Group] = t.aux
        if not t.dead and g.rtoken is None and groups.get(g.key) is g:
            self._emit(t, g)

    def drop_token(self, t: Token) -> None:
        g = t.aux
        if type(g) is Group:  # a result token (an owner's ``aux`` is its groups)
            if g.rtoken is t:
                g.rtoken = None
            return
        super().drop_token(t)

    def replay(self, emit: Emit) -> None:
        for t in list(self.items):
            for g in list(t.aux.values()):
                if g.rtoken is not None:
                    emit(g.rtoken, None, g.rtoken.binds)

    def label(self) -> str:
        return self.what[1]
