"""Negation nodes (engine stage 2, beta network): NOT and EXISTS of one pattern (a
counting negative node) and of a conjunction (Doorenbos' NCC node and its partner).

A negative node keeps, per left token, how many facts of its alpha memory match it,
found through hash indexes on both sides; it passes the token on while the count is 0
(NOT) or above 0 (EXISTS). An NCC node owns one token per left match and counts the
results its subnetwork's partner hands it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamrules.rete.alpha import AlphaMemory, Index, idx_add, idx_get, idx_remove
from streamrules.rete.beta import BetaMemory, Node, PlainNode, _none
from streamrules.rete.fact import SELF, WME, Items
from streamrules.rete.tokens import Emit, Token, kill, kill_children

if TYPE_CHECKING:
    from streamrules.rete.network import ReteNetwork


class _GateNode(PlainNode):
    """What NOT and EXISTS share, over one pattern or a conjunction: each left token counts
    what matches it, and passes on while that count is zero (NOT) or not zero (EXISTS)."""

    __slots__ = ()
    exists: bool
    items: dict[Token, None]

    def unblock(self, t: Token) -> None:
        if not t.dead and not t.children and (t.count == 0) is not self.exists:
            for c in self.kids:
                c.left(t, None, t.binds)

    def replay(self, emit: Emit) -> None:
        for t in list(self.items):
            if (t.count == 0) is not self.exists:
                emit(t, None, t.binds)

    def _count_dropped(self, t: Token) -> None:
        t.count -= 1
        if t.count == 0:
            if self.exists:
                kill_children(t)
            else:
                self.net._defer(t)


class _CountingNode(_GateNode):
    """Shared part of negative/exists nodes: tokens counting the facts that match them."""

    __slots__ = ("exists", "items", "lget", "lkeys", "own", "reads", "rget", "rix", "rkeys")
    stores = True

    def setup(self, amem: AlphaMemory, lkeys: tuple[int, ...], rkeys: tuple[Any, ...]) -> None:
        self.amem = amem
        self.lkeys = lkeys
        self.rkeys = rkeys
        self.items: dict[Token, None] = Items()
        self.reads = frozenset(k for k in rkeys if k is not SELF)
        amem.nodes[self] = None
        if lkeys:
            self.rix: Index | None = amem.index(rkeys)
            self.own: Index | None = Index(lkeys)
            self.lget: Callable[[Any], Any] = self.own.get
            self.rget: Callable[[Any], Any] = self.rix.get
        else:
            self.rix = self.own = None
            self.lget = self.rget = _none

    def matching(self, binds: tuple[Any, ...]) -> int:
        rix = self.rix
        if rix is None:
            return len(self.amem.items)  # type: ignore[union-attr]
        try:
            b = rix.map.get(self.lget(binds))
        except TypeError:
            b = idx_get(rix.map, self.lget(binds))
        return len(b) if b else 0

    def tokens_for(self, w: WME) -> tuple[Token, ...]:
        if self.own is None:
            return tuple(self.items)
        b = idx_get(self.own.map, self.rget(w.data))
        return tuple(b) if b else ()

    def store(self, t: Token) -> None:
        items = self.items
        if not items:
            self.amem.link(self)  # type: ignore[union-attr]
        items[t] = None
        own = self.own
        if own is not None:
            key = self.lget(t.binds)
            try:
                bucket = own.map.get(key)
            except TypeError:
                idx_add(own.map, key, t)
                return
            if bucket is None:
                own.map[key] = {t: None}
            else:
                bucket[t] = None

    def drop_token(self, t: Token) -> None:
        items = self.items
        del items[t]
        own = self.own
        if own is not None:
            key = self.lget(t.binds)
            try:
                bucket = own.map.get(key)
            except TypeError:
                idx_remove(own.map, key, t)
                bucket = None
            if bucket is not None:
                del bucket[t]
                if not bucket:
                    del own.map[key]
        if not items:
            self.amem.unlink(self)  # type: ignore[union-attr]

    def memory_size(self) -> int:
        return len(self.items)

    def reads_changed(self, changed: set[Any], amem: AlphaMemory) -> bool:
        return not self.reads.isdisjoint(changed)

    def destroy(self) -> None:
        for t in list(self.items):
            kill(t)
        super().destroy()
        if self.rix is not None:
            self.amem.release_index(self.rkeys)  # type: ignore[union-attr]


class NegativeNode(_CountingNode):
    """``NOT pattern`` (or ``EXISTS pattern`` when ``exists``) on a single pattern."""

    __slots__ = ()
    kind = "not"

    def __init__(
        self,
        net: ReteNetwork,
        parent: Node,
        amem: AlphaMemory,
        lkeys: tuple[int, ...],
        rkeys: tuple[Any, ...],
        exists: bool,
    ) -> None:
        super().__init__(net, parent)
        self.exists = exists
        self.setup(amem, lkeys, rkeys)

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        t = Token(parent, wme, self, binds)
        rix = self.rix
        if rix is None:
            n = len(self.amem.items)  # type: ignore[union-attr]
            items = self.items
            if not items:
                self.amem.link(self)  # type: ignore[union-attr]
            items[t] = None
        else:
            # Hot path of matching()+store(), inlined: one key for both indexes.
            key = self.lget(binds)
            try:
                b = rix.map.get(key)
                mine = self.own.map.get(key)  # type: ignore[union-attr]
            except TypeError:
                n = self.matching(binds)
                self.store(t)
            else:
                n = len(b) if b else 0
                items = self.items
                if not items:
                    self.amem.link(self)  # type: ignore[union-attr]
                items[t] = None
                if mine is None:
                    self.own.map[key] = {t: None}  # type: ignore[union-attr]
                else:
                    mine[t] = None
        t.count = n
        if (n == 0) is not self.exists:
            for c in self.kids:
                c.left(t, None, binds)

    def right(self, w: WME) -> None:
        for t in self.tokens_for(w):
            t.count += 1
            if t.count == 1:
                if self.exists:
                    for c in self.kids:
                        c.left(t, None, t.binds)
                else:
                    kill_children(t)

    def right_remove(self, w: WME) -> None:
        for t in self.tokens_for(w):
            self._count_dropped(t)

    def label(self) -> str:
        return f"{'exists' if self.exists else 'not'} {self.amem!r}"


class NccNode(_GateNode):
    """``NOT (conjunction)`` / ``EXISTS (conjunction)``: owns one token per left match and
    counts the subnetwork's results for it (Doorenbos' negated conjunctive conditions)."""

    __slots__ = ("exists", "items", "owners", "partner")
    kind = "ncc"
    stores = True

    def __init__(self, net: ReteNetwork, parent: Node, partner: NccPartner, exists: bool) -> None:
        super().__init__(net, parent)
        self.depth = max(self.depth, partner.depth) + 1
        self.partner = partner
        self.exists = exists
        self.items: dict[Token, None] = Items()
        self.owners: dict[tuple[Token, WME | None], Token] = {}
        partner.ncc = self

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        t = Token(parent, wme, self, binds)
        t.count = 0
        key = (parent, wme)
        self.items[t] = None
        self.owners[key] = t
        buf = self.partner.buffer.pop(key, None)
        if buf:
            for r in buf:
                r.aux = t
            t.count = len(buf)
        if (t.count == 0) is not self.exists:
            for c in self.kids:
                c.left(t, None, binds)

    def drop_token(self, t: Token) -> None:
        del self.items[t]
        self.owners.pop((t.parent, t.wme), None)  # type: ignore[arg-type]

    def result_added(self, owner: Token) -> None:
        owner.count += 1
        if owner.count == 1:
            if self.exists:
                for c in self.kids:
                    c.left(owner, None, owner.binds)
            else:
                kill_children(owner)

    def result_removed(self, owner: Token) -> None:
        self._count_dropped(owner)

    def memory_size(self) -> int:
        return len(self.items)

    def destroy(self) -> None:
        for t in list(self.items):
            kill(t)
        super().destroy()
        if isinstance(self.parent, BetaMemory) and self in self.parent.nccs:
            self.parent.nccs.remove(self)

    def label(self) -> str:
        return "exists (conjunction)" if self.exists else "not (conjunction)"


class NccPartner(PlainNode):
    """Bottom of an NCC subnetwork: hands each result to the owner token it belongs to."""

    __slots__ = ("buffer", "drop_wme", "levels", "ncc", "results")
    kind = "ncc-partner"
    stores = True

    def __init__(self, net: ReteNetwork, parent: Node, levels: int, drop_wme: bool) -> None:
        super().__init__(net, parent)
        self.levels = levels
        self.drop_wme = drop_wme
        self.buffer: dict[tuple[Token, WME | None], list[Token]] = {}
        self.results: dict[Token, None] = {}
        self.ncc: NccNode | None = None  # set once the NCC node exists

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        r = Token(parent, wme, self, binds)
        r.aux = None
        self.results[r] = None
        t: Token = parent
        w = wme
        for _ in range(self.levels):
            w = t.wme
            t = t.parent  # type: ignore[assignment]
        key = (t, None if self.drop_wme else w)
        ncc = self.ncc
        owner = ncc.owners.get(key) if ncc is not None else None
        if owner is None:
            self.buffer.setdefault(key, []).append(r)
            return
        r.aux = owner
        ncc.result_added(owner)  # type: ignore[union-attr]

    def drop_token(self, r: Token) -> None:
        del self.results[r]
        owner = r.aux
        if owner is not None and not owner.dead:
            self.ncc.result_removed(owner)  # type: ignore[union-attr]

    def replay(self, emit: Emit) -> None:  # pragma: no cover - nothing hangs below a partner
        return

    def memory_size(self) -> int:
        return len(self.results)

    def destroy(self) -> None:
        for t in list(self.results):
            kill(t)
        super().destroy()
