"""Beta network (engine stage 2): beta memories and the join, filter, bind and production
nodes of Doorenbos' Rete/UL (negation is in ``negative.py``, tokens in ``token.py``).

Tokens are stored only in memory nodes (beta memories, negative, NCC, accumulate and production
nodes); joins, filters and binds pass ``(parent, wme, binds)`` straight through.
Removal is tree-based: a retracted fact's tokens and their descendants are found
through ``wme.tokens`` and ``token.children``, never by scanning memories.
Join nodes are right-unlinked from their alpha memory while their beta memory is empty
and left-unlinked from their beta memory while their alpha memory is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from streamrules.rete.alpha import AlphaMemory, Index, idx_add, idx_get, idx_remove, make_getter
from streamrules.rete.fact import MISSING, SELF, WME, Items, freeze
from streamrules.rete.tokens import COMPILED, Emit, Token, kill

if TYPE_CHECKING:
    from streamrules.rete.agenda import Agenda
    from streamrules.rete.network import ReteNetwork

__all__ = [
    "BetaMemory",
    "BindNode",
    "Emit",
    "FilterNode",
    "JoinNode",
    "Node",
    "PNode",
    "PlainNode",
    "Token",
    "kill",
    "make_call",
]

_nid = 0


_new = object.__new__  # a token made without its constructor call, on hot paths
_NO_SLOTS: tuple[str, ...] = ()


# The fields every node has. Where they sit in an object is chosen per class (see
# ``Node``): CPython lays out slots base class first, each class's in name order.
NODE_SLOTS = (
    "all_children",
    "amem",
    "children",
    "depth",
    "kids",
    "net",
    "nid",
    "parent",
    "share",
    "src",
)


def cold_slots(hot: tuple[str, ...], *own: str) -> tuple[str, ...]:
    """The slots of a node class whose hot fields a base class of it declares: the
    ``NODE_SLOTS`` not among them, and the class's own."""
    return (*(s for s in NODE_SLOTS if s not in hot), *own)


class Node:
    """Base of beta nodes.

    It declares no slots itself (a name, not a literal, so that type checkers take the
    annotations below for the fields): each kind of node lays them out. With thousands
    of productions, an event reads its rule's nodes cold, so the nodes on an event's path
    (beta memory, join, production; and ``AlphaMemory``) are laid out for it:

    - the fields an activation reads (at most six) are declared in a base class of
      their own, so that they come first and share one cache line with the object's
      header; the rest follow;
    - the four classes fit one size class of CPython's small-object allocator
      (192-byte blocks with the collector's header, three cache lines): the objects
      built for one production then sit next to each other, on one memory page, and
      each starts a cache line (measured: benchmarks/RESULTS.md, issue 17).

    ``tests/unit/rete/test_layout.py`` checks both. The other kinds of node take the
    plain layout of ``PlainNode``.
    """

    __slots__ = _NO_SLOTS
    all_children: dict[Node, None]
    amem: AlphaMemory | None
    children: dict[Node, None]
    depth: int
    kids: tuple[Node, ...]
    net: ReteNetwork
    nid: int
    parent: Node | None
    share: dict[Any, Node]
    src: Node | None
    kind = "node"
    stores = False

    def __init__(self, net: ReteNetwork, parent: Node | None) -> None:
        global _nid
        _nid += 1
        self.nid = _nid
        self.net = net
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.children = {}
        # The linked children as a tuple, for the activations: with thousands of
        # productions a tuple is one cold object to read where a dict is two or three.
        # (Not kept by a beta memory: see ``BetaMemory._kids_changed``.)
        self.kids = ()
        self.all_children = {}
        self.share = {}
        self.amem = None
        # The join whose output this memory node stores (None: not fed by a join).
        self.src = None
        p = parent
        while p is not None and p.kind in ("filter", "bind"):
            p = p.parent
        if p is not None and p.kind == "join":
            self.src = p

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def add_child(self, node: Node, linked: bool = True) -> None:
        self.all_children[node] = None
        if linked:
            self.children[node] = None
            self._kids_changed()

    def remove_child(self, node: Node) -> None:
        self.all_children.pop(node, None)
        self.children.pop(node, None)
        self._kids_changed()

    def _kids_changed(self) -> None:
        self.kids = tuple(self.children)

    def right(self, w: WME) -> None:
        """A fact entered the alpha memory."""

    def right_remove(self, w: WME) -> None:
        """A fact left the alpha memory (its tokens are already deleted)."""

    def drop_token(self, t: Token) -> None:
        """Forget a token being deleted."""

    def replay(self, emit: Emit) -> None:
        """Emit every current output of this node (to fill a newly built child)."""
        raise NotImplementedError

    def memory_size(self) -> int:
        return 0

    def reads_changed(self, changed: set[Any], amem: AlphaMemory) -> bool:
        """Whether a change of these attributes of a fact in ``amem`` (one of this node's
        inputs) can change this node's output."""
        return False

    def inputs(self) -> tuple[AlphaMemory, ...]:
        """The alpha memories this node reads."""
        return () if self.amem is None else (self.amem,)

    def destroy(self) -> None:
        """Detach this node (which has no children left) and delete its tokens."""
        p = self.parent
        if p is not None:
            p.remove_child(self)
            for k, v in list(p.share.items()):
                if v is self:
                    del p.share[k]
            if isinstance(p, BetaMemory):
                p.joins.pop(self, None)  # type: ignore[call-overload]
                p.joins_changed()
                if self in p.nccs:
                    p.nccs.remove(self)
        amem = self.amem
        if amem is not None:
            amem.nodes.pop(self, None)
            if amem.joins.pop(self, MISSING) is not MISSING:  # type: ignore[call-overload]
                amem.nj -= 1
            amem.unlink(self)

    def label(self) -> str:
        return self.kind


class PlainNode(Node):
    """The layout of the nodes off an event's usual path: ``NODE_SLOTS`` in name order."""

    __slots__ = NODE_SLOTS


class _BetaMemoryHot(Node):
    """The fields of a beta memory that a token entering or leaving it reads."""

    __slots__ = ("indexed", "items", "join1", "join1_amem", "kid")
    indexed: bool
    items: dict[Token, None]
    join1: JoinNode | None
    join1_amem: AlphaMemory | None
    kid: Node | None


class BetaMemory(_BetaMemoryHot):
    """Stores tokens; parent of join nodes, with hash indexes on their left keys.

    The indexes are kept only while the memory is large: they are filled when it grows
    past ``SMALL`` tokens and left empty from when it is empty again. A small memory is
    scanned instead (``matching``), which costs no more than a lookup and spares every
    token an entry in each index. With thousands of productions, most memories hold a
    token or none, and an index is two more cold objects per event.
    """

    __slots__ = cold_slots(_BetaMemoryHot.__slots__, "few", "indexes", "joins", "jt", "nccs")
    kind = "memory"
    stores = True

    def __init__(self, net: ReteNetwork, parent: Node | None) -> None:
        super().__init__(net, parent)
        self.items = Items()
        self.indexes: dict[tuple[int, ...], Index] = {}
        self.indexed = False
        self.joins: dict[JoinNode, None] = {}
        # The joins as a tuple, made when first needed after they changed (they change
        # only when productions do): one object to read when the memory fills or
        # empties, where the dict is two.
        self.jt: tuple[JoinNode, ...] | None = ()
        # The only join, when there is one (a rule's usual chain): not even the tuple to
        # read. None when there are none or several, or when ``jt`` is to be made again.
        # With its alpha memory, read here rather than in the join (not among its hot
        # fields): what the memory filling or emptying links or unlinks it from.
        self.join1 = None
        self.join1_amem = None
        self.nccs: list[Node] = []
        # The linked children as a tuple while they are few (rebuilt when they change:
        # left unlinking changes them as facts come and go), else None: the dict is read.
        self.few: tuple[Node, ...] | None = ()
        # The only linked child, when there is one: read instead of ``few``.
        self.kid = None

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        if COMPILED:  # compiled, a constructor call is a C call: nothing to write out
            t = Token(parent, wme, self, binds)
        else:
            t = _new(Token)  # Token(parent, wme, self, binds), written out (hot: see PNode)
            t.parent = parent
            t.wme = wme
            t.node = self
            t.binds = binds
            t.children = None
            t.dead = False
            ch = parent.children
            if ch is None:
                parent.children = t
            elif isinstance(ch, dict):
                ch[t] = None
            elif ch is not parent:  # (the root token: see tokens.untrack_children)
                parent.children = {ch: None, t: None}
            r = parent.recency
            if wme is not None:
                if wme.tag > r:
                    r = wme.tag
                ts = wme.tokens  # (None, the only token, or a dict: see WME.tokens)
                if ts is None:
                    wme.tokens = t
                elif isinstance(ts, dict):
                    ts[t] = None
                else:
                    wme.tokens = {ts: None, t: None}
            t.recency = r
        items = self.items
        if not items:
            items[t] = None
            j1 = self.join1
            if j1 is not None:
                self.join1_amem.link(j1)  # type: ignore[union-attr]
            else:
                for j in self._joins():
                    j.amem.link(j)  # type: ignore[union-attr]
        else:
            items[t] = None
        if self.indexed:
            for ix in self.indexes.values():
                key = ix.get(binds)
                try:
                    bucket = ix.map.get(key)
                except TypeError:
                    idx_add(ix.map, key, t)
                    continue
                if bucket is None:
                    ix.map[key] = {t: None}
                else:
                    bucket[t] = None
        elif len(items) > SMALL and self.indexes:
            self._fill_indexes()
        kid = self.kid
        if kid is not None:
            kid.left(t, None, binds)
            return
        few = self.few
        for c in few if few is not None else self.children:
            c.left(t, None, binds)

    def drop_token(self, t: Token) -> None:
        items = self.items
        del items[t]
        if self.indexed:
            binds = t.binds
            for ix in self.indexes.values():
                key = ix.get(binds)
                try:
                    bucket = ix.map.get(key)
                except TypeError:
                    idx_remove(ix.map, key, t)
                    continue
                if bucket is not None:
                    del bucket[t]
                    if not bucket:
                        del ix.map[key]
        if not items:
            items.clear()  # (see Items.clear)
            self.indexed = False  # (the indexes are empty now)
            j1 = self.join1
            if j1 is not None:
                self.join1_amem.unlink(j1)  # type: ignore[union-attr]
            else:
                for j in self._joins():
                    j.amem.unlink(j)  # type: ignore[union-attr]

    def _joins(self) -> tuple[JoinNode, ...]:
        """The joins as a tuple (made again after they changed; see ``join1``)."""
        jt = self.jt
        if jt is None:
            jt = self.jt = tuple(self.joins)
            self.join1 = j1 = jt[0] if len(jt) == 1 else None
            self.join1_amem = None if j1 is None else j1.amem
        return jt

    def joins_changed(self) -> None:
        """A join below this memory was added or removed: its tuples are made again."""
        self.jt = None
        self.join1 = self.join1_amem = None

    def _fill_indexes(self) -> None:
        for ix in self.indexes.values():
            for t in self.items:
                idx_add(ix.map, ix.get(t.binds), t)
        self.indexed = True

    def matching(self, ix: Index, key: Any) -> Iterable[Token] | None:
        """The tokens whose values on ``ix``'s keys equal ``key`` (as the index finds them)."""
        if self.indexed:
            return idx_get(ix.map, key)
        return scan(self.items, ix.get, key)

    def index(self, slots: tuple[int, ...]) -> Index:
        ix = self.indexes.get(slots)
        if ix is None:
            ix = self.indexes[slots] = Index(slots)
            if self.indexed:
                for t in self.items:
                    idx_add(ix.map, ix.get(t.binds), t)
        ix.refs += 1
        return ix

    def release_index(self, slots: tuple[int, ...]) -> None:
        ix = self.indexes[slots]
        ix.refs -= 1
        if ix.refs == 0:
            del self.indexes[slots]

    def relink(self, node: Node) -> None:
        if node not in self.children:
            self.children[node] = None
            self._kids_changed()

    def unlink_child(self, node: Node) -> None:
        if self.children.pop(node, MISSING) is not MISSING:
            self._kids_changed()

    def _kids_changed(self) -> None:
        """A beta memory's children change while facts come and go (left unlinking): it
        keeps them as a tuple (``few``) only while they are few, since a memory with many
        child joins would rebuild a tuple of them at each change (the root, at each
        production built). It also keeps the NCC nodes' place, last."""
        self._nccs_last()
        ch = self.children
        self.few = few = tuple(ch) if len(ch) <= FEW else None
        self.kid = few[0] if few is not None and len(few) == 1 else None

    def _nccs_last(self) -> None:
        # An NCC node must see a left activation after its subnetwork has (Doorenbos 2.8).
        for n in self.nccs:
            if n in self.children:
                del self.children[n]
                self.children[n] = None

    def replay(self, emit: Emit) -> None:
        for t in list(self.items):
            emit(t, None, t.binds)

    def memory_size(self) -> int:
        return len(self.items)

    def destroy(self) -> None:
        for t in list(self.items):
            kill(t)
        super().destroy()


class _JoinHot(Node):
    """The fields of a join that its left and right activations read (six: with the
    object's header, one cache line; see ``JoinNode``)."""

    __slots__ = ("ext", "kid", "lget", "lix", "parent", "rix")
    ext: Callable[[Any], tuple[Any, ...]] | None
    kid: Node | None
    lget: Callable[[Any], Any]
    lix: Index | None
    rix: Index | None


class JoinNode(_JoinHot):
    """Joins the tokens of its beta memory with the facts of an alpha memory on equality
    of bound variables (hashed on both sides)."""

    __slots__ = cold_slots(_JoinHot.__slots__, "reads", "reads_all", "rget", "rkeys")
    kind = "join"

    def __init__(
        self,
        net: ReteNetwork,
        parent: BetaMemory,
        amem: AlphaMemory,
        lkeys: tuple[int, ...],
        rkeys: tuple[Any, ...],
        ext_keys: tuple[Any, ...],
    ) -> None:
        super().__init__(net, parent)
        # The only child, when there is one (the usual case: a production, or the next
        # memory), read instead of the ``kids`` tuple, one cold object fewer per event.
        self.kid = None
        self.amem = amem
        self.rkeys = rkeys
        if lkeys:
            self.lix = parent.index(lkeys)
            self.rix = amem.index(rkeys)
            self.rget = self.rix.get
            # The left key's getter, read here rather than through the (per-memory, so
            # with many rules cold) index object on each left activation.
            self.lget = self.lix.get
        else:
            self.lix = self.rix = None
            self.rget = self.lget = _none

        # The values a match of the join adds to its bindings, from the fact's values;
        # None when that is the fact alone (a pattern that binds no variable).
        self.ext = None if ext_keys == (SELF,) else make_getter(ext_keys)
        self.reads = frozenset(k for k in (*rkeys, *ext_keys) if k is not SELF)
        self.reads_all = False
        amem.nodes[self] = None
        if parent is net.root:
            # Never unlinked: the root's one token is never left-activated again once the
            # join is built, and the root is never empty. Unlinking would only cost each
            # fact entering or leaving an empty memory a lookup in the root's (large)
            # children.
            parent.add_child(self)
        else:
            parent.joins[self] = None
            parent.joins_changed()
            amem.joins[self] = None
            amem.nj += 1
            parent.add_child(self, linked=bool(amem.items))
        if parent.items:
            amem.link(self)

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        rix = self.rix
        if rix is None:
            bucket: dict[WME, None] | None = self.amem.items  # type: ignore[union-attr]
        else:
            bucket = idx_get(rix.map, self.lget(binds))
            if bucket is None:
                return
        kid = self.kid
        if kid is not None:
            ext = self.ext
            if ext is None:
                for w in bucket:  # type: ignore[union-attr]
                    kid.left(parent, w, (*binds, w))
            else:
                for w in bucket:  # type: ignore[union-attr]
                    kid.left(parent, w, binds + ext(w.data))
            return
        children = self.kids
        ext = self.ext
        if ext is None:
            for w in bucket:  # type: ignore[union-attr]
                nb = (*binds, w)
                for c in children:
                    c.left(parent, w, nb)
        else:
            for w in bucket:  # type: ignore[union-attr]
                nb = binds + ext(w.data)
                for c in children:
                    c.left(parent, w, nb)

    def right(self, w: WME) -> None:
        lix = self.lix
        parent: BetaMemory = self.parent  # type: ignore[assignment]
        if lix is None:
            bucket: Iterable[Token] | None = parent.items
        elif parent.indexed:  # (parent.matching, written out: once per right activation)
            bucket = idx_get(lix.map, self.rget(w.data))
        else:
            bucket = scan(parent.items, lix.get, self.rget(w.data))
        if not bucket:
            return
        ext = self.ext
        e = (w,) if ext is None else ext(w.data)
        # Safe to iterate in place: what this activation adds or deletes lies below
        # this node, never in its parent memory.
        kid = self.kid
        if kid is not None:
            for t in bucket:
                kid.left(t, w, t.binds + e)
            return
        children = self.kids
        for t in bucket:
            nb = t.binds + e
            for c in children:
                c.left(t, w, nb)

    def replay(self, emit: Emit) -> None:
        for t in list(self.parent.items):  # type: ignore[union-attr]
            rix = self.rix
            if rix is None:
                bucket = self.amem.items  # type: ignore[union-attr]
            else:
                bucket = idx_get(rix.map, self.lix.get(t.binds)) or {}  # type: ignore[union-attr]
            for w in list(bucket):
                e = (w,) if self.ext is None else self.ext(w.data)
                emit(t, w, t.binds + e)

    def _kids_changed(self) -> None:
        kids = self.kids = tuple(self.children)
        self.kid = kids[0] if len(kids) == 1 else None

    def left_unlink(self) -> None:
        self.parent.unlink_child(self)  # type: ignore[union-attr]

    def left_relink(self) -> None:
        self.parent.relink(self)  # type: ignore[union-attr]

    def reads_changed(self, changed: set[Any], amem: AlphaMemory) -> bool:
        return self.reads_all or not self.reads.isdisjoint(changed)

    def rebinds(self, changed: set[Any]) -> bool:
        """Whether a change of these attributes only changes the values this join binds
        for production nodes: it tests none of them, and nothing below it reads them."""
        if self.reads_all or not changed.isdisjoint(self.rkeys):
            return False
        return all(c.kind == "production" for c in self.all_children)

    def rebind(self, w: WME, kept: dict[tuple[Token, Node], Token]) -> None:
        """Step 3 of a modify of ``w`` for which ``rebinds`` holds: the same partial
        matches meet ``w`` again (its tested attributes did not change), so each match
        withdrawn in step 1 is renewed in place, in the order ``right`` would re-make it."""
        lix = self.lix
        parent: BetaMemory = self.parent  # type: ignore[assignment]
        if lix is None:
            bucket: Iterable[Token] | None = parent.items
        else:
            bucket = parent.matching(lix, self.rget(w.data))
        if not bucket:
            return
        ext = self.ext
        e = (w,) if ext is None else ext(w.data)
        children = self.kids
        pop = kept.pop
        for t in bucket:
            nb = t.binds + e
            for c in children:
                x = pop((t, c), None)
                if x is None or x.dead:
                    c.left(t, w, nb)
                else:
                    c.renew(x, t, nb)  # type: ignore[attr-defined]

    def destroy(self) -> None:
        super().destroy()
        if self.reads_all:
            self.amem.wild -= 1  # type: ignore[union-attr]
        if self.lix is not None:
            self.parent.release_index(self.lix.keys)  # type: ignore[union-attr]
            self.amem.release_index(self.rkeys)  # type: ignore[union-attr]

    def label(self) -> str:
        return f"join {self.amem!r} on {list(self.rkeys)}"


def _none(_: Any) -> Any:
    return None


SMALL = 8  # a beta memory of at most this many tokens is scanned, not indexed
FEW = 8  # a beta memory of at most this many linked children also keeps them as a tuple


def scan(items: Iterable[Token], get: Callable[[Any], Any], key: Any) -> list[Token]:
    """The tokens whose ``get(binds)`` equals ``key`` as an index lookup finds them."""
    try:
        hash(key)
    except TypeError:
        fk = freeze(key)
        return [t for t in items if freeze(get(t.binds)) == fk]
    # An unhashable value never equals a hashable key in an index (it is frozen first).
    return [
        t
        for t in items
        if (k := get(t.binds)) is key or (k == key and type(k).__hash__ is not None)
    ]


class FilterNode(PlainNode):
    """Passes on the partial matches for which a test of bound variables holds."""

    __slots__ = ("call", "fn", "what")
    kind = "filter"

    def __init__(
        self,
        net: ReteNetwork,
        parent: Node,
        fn: Callable[..., Any],
        slots: tuple[int, ...],
        what: tuple[str, str],
    ) -> None:
        super().__init__(net, parent)
        self.fn = fn
        self.what = what
        self.call = make_call(fn, slots)

    def test(self, binds: tuple[Any, ...]) -> bool:
        try:
            return bool(self.call(binds))
        except Exception as exc:  # a user test raising must not corrupt the network
            self.net._user_error(exc, self.what)
            return False

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        try:
            ok = self.call(binds)
        except Exception as exc:  # a user test raising must not corrupt the network
            self.net._user_error(exc, self.what)
            return
        if ok:
            for c in self.kids:
                c.left(parent, wme, binds)

    def replay(self, emit: Emit) -> None:
        def through(p: Token, w: WME | None, b: tuple[Any, ...]) -> None:
            if self.test(b):
                emit(p, w, b)

        self.parent.replay(through)  # type: ignore[union-attr]

    def label(self) -> str:
        return self.what[1]


class BindNode(PlainNode):
    """Appends ``fn(bound variables)`` to the bindings."""

    __slots__ = ("call", "fn", "what")
    kind = "bind"

    def __init__(
        self,
        net: ReteNetwork,
        parent: Node,
        fn: Callable[..., Any],
        slots: tuple[int, ...],
        what: tuple[str, str],
    ) -> None:
        super().__init__(net, parent)
        self.fn = fn
        self.what = what
        self.call = make_call(fn, slots)

    def compute(self, binds: tuple[Any, ...]) -> tuple[bool, Any]:
        try:
            return True, self.call(binds)
        except Exception as exc:
            self.net._user_error(exc, self.what)
            return False, None

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        ok, v = self.compute(binds)
        if ok:
            nb = (*binds, v)
            for c in self.kids:
                c.left(parent, wme, nb)

    def replay(self, emit: Emit) -> None:
        def through(p: Token, w: WME | None, b: tuple[Any, ...]) -> None:
            ok, v = self.compute(b)
            if ok:
                emit(p, w, (*b, v))

        self.parent.replay(through)  # type: ignore[union-attr]

    def label(self) -> str:
        return self.what[1]


def make_call(fn: Callable[..., Any], slots: tuple[int, ...]) -> Callable[[tuple[Any, ...]], Any]:
    """Compile ``fn(*bound values)`` once; facts are passed as the user's objects."""
    n = len(slots)
    if n == 0:
        return lambda b: fn()
    if n == 1:
        (i,) = slots

        def call1(b: tuple[Any, ...]) -> Any:
            x = b[i]
            return fn(x.fact if type(x) is WME else x)

        return call1
    if n == 2:
        i, j = slots

        def call2(b: tuple[Any, ...]) -> Any:
            x = b[i]
            y = b[j]
            return fn(x.fact if type(x) is WME else x, y.fact if type(y) is WME else y)

        return call2

    def calln(b: tuple[Any, ...]) -> Any:
        return fn(*[x.fact if type(x) is WME else x for x in (b[k] for k in slots)])

    return calln


class _PNodeHot(Node):
    """The fields of a production node that a match made, fired and deleted reads."""

    __slots__ = ("agenda", "args", "fn", "items", "net", "xslots")
    agenda: Agenda
    args: tuple[int, ...] | None
    fn: Callable[..., Any]
    items: dict[Token, None]
    xslots: tuple[int, ...]


class PNode(_PNodeHot):
    """A production's terminal node: each token is a match (an activation)."""

    __slots__ = cold_slots(_PNodeHot.__slots__, "branch", "info", "order", "prod")
    kind = "production"
    stores = True

    def __init__(self, net: ReteNetwork, parent: Node, prod: Any, info: Any) -> None:
        super().__init__(net, parent)
        self.prod = prod
        self.info = info
        # The action, and where its positional arguments sit in a match's bindings when
        # they are all known when it is built (None: the network works them out at each
        # firing; see ``ReteNetwork._plan_args``).
        self.fn = prod.__wrapped__
        self.args = None
        self.items = Items()
        self.order = 0
        self.agenda = net.agenda
        # Below a cross join: where the facts of each match sit in its bindings.
        self.xslots = getattr(parent, "wslots", ())

    def left(self, parent: Token, wme: WME | None, binds: tuple[Any, ...]) -> None:
        # Token(parent, wme, self, binds) written out: the hottest allocation of a busy
        # network (Miss Manners makes ~100,000 matches), and a constructor call costs
        # (interpreted; compiled, it is a C call).
        if COMPILED:
            t = Token(parent, wme, self, binds)
            t.fired = False
            t.aux = None
        else:
            t = _new(Token)
            t.parent = parent
            t.wme = wme
            t.node = self
            t.binds = binds
            t.children = None
            t.dead = False
            t.fired = False
            t.aux = None
            ch = parent.children
            if ch is None:
                parent.children = t
            elif isinstance(ch, dict):
                ch[t] = None
            elif ch is not parent:  # (the root token: see tokens.untrack_children)
                parent.children = {ch: None, t: None}
            r = parent.recency
            if wme is not None:
                if wme.tag > r:
                    r = wme.tag
                ts = wme.tokens  # (None, the only token, or a dict: see WME.tokens)
                if ts is None:
                    wme.tokens = t
                elif isinstance(ts, dict):
                    ts[t] = None
                else:
                    wme.tokens = {ts: None, t: None}
            t.recency = r
        self._enter(t)

    def left_cross(
        self, parent: Token, wmes: tuple[WME, ...], binds: tuple[Any, ...], recency: int
    ) -> None:
        """A match made by a cross join (``cross.py``): one token of several facts."""
        # Written out as in ``left``, loop included: Miss Manners makes most of its matches
        # here, and the constructor call plus a call per fact cost it 6% of its instructions
        # (interpreted; compiled, the constructor is a C call).
        if COMPILED:
            t = Token(parent, None, self, binds)
            t.fired = False
            t.aux = None
        else:
            t = _new(Token)
            t.parent = parent
            t.wme = None
            t.node = self
            t.binds = binds
            t.children = None
            t.dead = False
            t.fired = False
            t.aux = None
            ch = parent.children
            if ch is None:
                parent.children = t
            elif isinstance(ch, dict):
                ch[t] = None
            elif ch is not parent:  # (the root token: see tokens.untrack_children)
                parent.children = {ch: None, t: None}
        for w in wmes:
            ts = w.tokens
            if ts is None:
                w.tokens = t
            elif isinstance(ts, dict):
                ts[t] = None
            else:
                w.tokens = {ts: None, t: None}
        t.recency = recency
        self._enter(t)

    def _enter(self, t: Token) -> None:
        """A new match: stored here and pending in the agenda."""
        items = self.items
        agenda = self.agenda
        if not items:  # (see Agenda.holding)
            agenda.holding[self] = None
        items[t] = None
        t.count = agenda.seq = agenda.seq + 1
        fresh = agenda.fresh
        fresh.append(t)
        agenda.live += 1
        if len(fresh) > 256 + 2 * agenda.live:
            agenda.compact()
        if self.net._watch_activations:
            self.net._announce(t)

    def withdraw(self, t: Token) -> None:
        """A modify changed what this match binds: out of the agenda until ``renew``
        (only called when listeners watch activations; ``renew`` alone does the rest)."""
        if not t.fired:
            t.fired = True  # not pending; drop_token then leaves the agenda's count alone
            self.agenda.live -= 1
            self.net._withdrawn(t)

    def renew(self, t: Token, parent: Token, binds: tuple[Any, ...]) -> None:
        """The match ``t`` again, with new values: a new activation, as ``left`` makes.

        Its old activation ends here if ``withdraw`` did not end it: a pending one keeps
        its place in the agenda's count (its old entry is stale: the count changes)."""
        t.binds = binds
        r = parent.recency
        tag = t.wme.tag  # type: ignore[union-attr]
        t.recency = tag if tag > r else r
        self._reactivate(t)

    def renew_cross(self, t: Token, binds: tuple[Any, ...], recency: int) -> None:
        """``renew`` for a match of a cross join (which gives its recency)."""
        t.binds = binds
        t.recency = recency
        self._reactivate(t)

    def _reactivate(self, t: Token) -> None:
        agenda = self.agenda
        if t.fired:
            t.fired = False
            agenda.live += 1
        if t.aux:  # the logical facts of the old match lose its support
            self.net._unsupport(t)
            t.aux = None
        t.count = agenda.seq = agenda.seq + 1
        fresh = agenda.fresh
        fresh.append(t)
        agenda.renewed = True
        if len(fresh) > 256 + 2 * agenda.live:
            agenda.compact()
        if self.net._watch_activations:
            self.net._announce(t)

    def drop_token(self, t: Token) -> None:
        items = self.items
        del items[t]
        if not items:
            items.clear()  # (see Items.clear)
            del self.agenda.holding[self]
        if self.xslots and t.wme is None:  # a cross join's match: in each fact's tokens
            b = t.binds
            for i in self.xslots:  # (each fact has this and other matches: a dict)
                w = b[i]
                ts = w.tokens
                if ts is t:
                    w.tokens = None
                else:
                    del ts[t]
        if not t.fired:
            agenda = self.agenda
            agenda.live -= 1
            if self.net._watch_activations:
                self.net._withdrawn(t)
        if t.aux:
            self.net._unsupport(t)

    def replay(self, emit: Emit) -> None:  # pragma: no cover - a production has no children
        return

    def memory_size(self) -> int:
        return len(self.items)

    def destroy(self) -> None:
        for t in list(self.items):
            kill(t)
        super().destroy()

    def label(self) -> str:
        return f"production {self.prod.name}"
