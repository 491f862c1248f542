"""Alpha network (engine stage 1): hashed dispatch of a fact to the alpha memories whose
constant tests it passes.

Each alpha memory is reached through one discriminating (attribute, constant) pair,
indexed per fact type as ``type -> attribute -> constant -> memories``; an inserted fact
looks up only the attributes some pattern discriminates on, so its cost does not grow
with the number of patterns. Memories also keep hash indexes on the attributes their
joins test for equality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from streamrules.rete.fact import MISSING, WME, Items, freeze

if TYPE_CHECKING:
    from streamrules.rete.beta import JoinNode, Node

Test = Callable[[dict[Any, Any]], bool]


def idx_add(idx: dict[Any, dict[Any, None]], key: Any, item: Any) -> None:
    try:
        bucket = idx.get(key)
    except TypeError:
        key = freeze(key)
        bucket = idx.get(key)
    if bucket is None:
        idx[key] = {item: None}
    else:
        bucket[item] = None


def idx_remove(idx: dict[Any, dict[Any, None]], key: Any, item: Any) -> None:
    try:
        bucket = idx.get(key)
    except TypeError:
        key = freeze(key)
        bucket = idx.get(key)
    if bucket is not None:
        bucket.pop(item, None)
        if not bucket:
            del idx[key]


def idx_get(idx: dict[Any, dict[Any, None]], key: Any) -> dict[Any, None] | None:
    try:
        return idx.get(key)
    except TypeError:
        return idx.get(freeze(key))


_GETTERS: dict[tuple[Any, ...], Callable[[Any], Any]] = {}


def make_getter(keys: tuple[Any, ...]) -> Callable[[Any], Any]:
    """Key extractor: a scalar for one key, a tuple for several (``itemgetter``'s shape).

    One object per distinct key tuple, shared by every node that extracts the same keys:
    with thousands of productions, a fact then reaches hot getters, not one cold object
    per node (the same for the alpha tests, see ``_test_for``)."""
    getter = _GETTERS.get(keys)
    if getter is None:
        getter = _GETTERS[keys] = itemgetter(*keys)
    return getter


class Index:
    """A hash index of a memory on some keys, shared by the nodes joining on them."""

    __slots__ = ("get", "keys", "map", "refs")

    def __init__(self, keys: tuple[Any, ...]) -> None:
        self.keys = keys
        self.get = make_getter(keys)
        self.map: dict[Any, dict[Any, None]] = {}
        self.refs = 0


class _AlphaMemoryHot:
    """The fields of an alpha memory that a fact entering or leaving it reads: declared
    in a base class so that they come first, in the cache line of the object's header
    (CPython lays out slots base class first, each class's in name order). With
    thousands of productions the memory is read cold: one line rather than three (see
    ``beta.Node`` on the layout of the nodes an event reads)."""

    __slots__ = ("_rsnap", "items", "ixs", "nj", "solo", "test")


class AlphaMemory(_AlphaMemoryHot):
    """The facts passing one pattern's constant tests, and the nodes fed by them."""

    __slots__ = (
        "_intra",
        "_snap",
        "cls",
        "consts",
        "disc",
        "indexes",
        "joins",
        "key",
        "nodes",
        "reads",
        "required",
        "successors",
        "wild",
    )

    def __init__(
        self,
        key: Any,
        cls: type,
        consts: tuple[tuple[Any, Any], ...],
        required: frozenset[Any],
        intra: tuple[tuple[Any, Any], ...],
    ) -> None:
        self.key = key
        self.cls = cls
        self.consts = consts
        self.required = required
        self.items: dict[WME, None] = Items()
        self.indexes: dict[tuple[Any, ...], Index] = {}
        self.ixs: tuple[Index, ...] = ()  # (the indexes, for inserts and removals)
        # Linked successors (right activations), all nodes using this memory, and the
        # join nodes among them that left unlinking applies to.
        self.successors: dict[Node, None] = {}
        self.nodes: dict[Node, None] = {}
        self.joins: dict[JoinNode, None] = {}
        # len(joins), kept by the joins: a memory whose only join is under the root (a
        # rule's first pattern) then reads no dict when it fills or empties.
        self.nj = 0
        self._snap: tuple[Node, ...] | None = None
        # The snapshot's only node, when it has one (a rule's first pattern: its join
        # under the root), read instead of the tuple; None when the snapshot is to be
        # taken again (see ``snapshot``).
        self.solo: Node | None = None
        self._rsnap: tuple[Node, ...] | None = None
        self.reads = frozenset(k for k, _ in consts) | required
        self.disc: tuple[Any, Any] | None = None
        self.test: Test | None = None
        self._intra = intra
        # How many joins on this memory re-test the whole fact (a Filter reads it).
        self.wild = 0

    def build_test(self) -> None:
        consts = tuple(c for c in self.consts if c != self.disc)
        required = tuple(sorted(self.required - {k for k, _ in self.consts}, key=repr))
        self.test = _test_for(consts, required, self._intra)

    def full_test(self, d: dict[Any, Any]) -> bool:
        for k, v in self.consts:
            if k not in d or d[k] != v:
                return False
        return self.test is None or self.test(d)

    def index(self, keys: tuple[Any, ...]) -> Index:
        ix = self.indexes.get(keys)
        if ix is None:
            ix = self.indexes[keys] = Index(keys)
            self.ixs = tuple(self.indexes.values())
            for w in self.items:
                idx_add(ix.map, ix.get(w.data), w)
        ix.refs += 1
        return ix

    def release_index(self, keys: tuple[Any, ...]) -> None:
        ix = self.indexes[keys]
        ix.refs -= 1
        if ix.refs == 0:
            del self.indexes[keys]
            self.ixs = tuple(self.indexes.values())

    def snapshot(self) -> tuple[Node, ...]:
        """Linked successors, descendants first (Doorenbos' ordering against duplicates)."""
        snap = self._snap
        if snap is None:
            snap = self._snap = tuple(sorted(self.successors, key=_depth_key))
            self.solo = snap[0] if len(snap) == 1 else None
        return snap

    def remove_snapshot(self) -> tuple[Node, ...]:
        """The linked successors that act when a fact leaves (negative and accumulate
        nodes; a join has nothing to do: the fact's tokens are already deleted)."""
        snap = self._rsnap
        if snap is None:
            from streamrules.rete.beta import Node  # (beta imports this module)

            base = Node.right_remove
            snap = self._rsnap = tuple(
                n for n in self.snapshot() if type(n).right_remove is not base
            )
        return snap

    def link(self, node: Node) -> None:
        if node not in self.successors:
            self.successors[node] = None
            self._snap = self._rsnap = self.solo = None

    def unlink(self, node: Node) -> None:
        if self.successors.pop(node, MISSING) is not MISSING:
            self._snap = self._rsnap = self.solo = None

    def insert(self, w: WME) -> None:
        was_empty = not self.items
        self.items[w] = None
        w.amems.append(self)
        d = w.data
        for ix in self.ixs:
            idx_add(ix.map, ix.get(d), w)
        if was_empty and self.nj:
            for j in self.joins:
                j.left_relink()

    def remove(self, w: WME) -> None:
        del self.items[w]
        w.amems.remove(self)
        d = w.data
        for ix in self.ixs:
            idx_remove(ix.map, ix.get(d), w)
        items = self.items
        if not items:
            items.clear()  # (see Items.clear)
            if self.nj:
                for j in self.joins:
                    j.left_unlink()

    def __repr__(self) -> str:
        consts = ", ".join(f"{k}={v!r}" for k, v in self.consts)
        return f"{self.cls.__name__}({consts})"


_TESTS: dict[Any, Test] = {}


def _test_for(
    consts: tuple[tuple[Any, Any], ...],
    required: tuple[Any, ...],
    intra: tuple[tuple[Any, Any], ...],
) -> Test | None:
    """The test of a memory's remaining constants, required attributes and intra-pattern
    equalities (None: nothing to test), shared by all memories that test the same."""
    if not consts and not required and not intra:
        return None
    try:
        key = (freeze(consts), required, intra)
        hash(key)
    except TypeError:  # (freeze makes any constant hashable; an odd attribute name may not be)
        key = None
    test = _TESTS.get(key) if key is not None else None
    if test is not None:
        return test
    if not consts and not intra and len(required) == 1:
        # A pattern that binds one attribute, e.g. Order(total=V("total")): the commonest
        # test, once per fact of the type.
        (only,) = required

        def test(d: dict[Any, Any]) -> bool:
            return only in d

    else:

        def test(d: dict[Any, Any]) -> bool:
            for k, v in consts:
                if k not in d or d[k] != v:
                    return False
            for k in required:
                if k not in d:
                    return False
            return not intra or all(d[a] == d[b] for a, b in intra)

    if key is not None:
        _TESTS[key] = test
    return test


def _depth_key(node: Node) -> tuple[int, int]:
    return (-node.depth, node.nid)


def _members(bucket: AlphaMemory | tuple[AlphaMemory, ...] | None) -> tuple[AlphaMemory, ...]:
    """The memories of a dispatch bucket (see ``_TypeIndex.by_attr``)."""
    if bucket is None:
        return ()
    return bucket if isinstance(bucket, tuple) else (bucket,)


class _TypeIndex:
    __slots__ = ("by_attr", "fixed", "plain")

    def __init__(self) -> None:
        self.plain: dict[AlphaMemory, None] = {}
        # attribute -> constant -> the memories reached through that pair: the memory
        # itself when it is the only one (the usual case: nothing more to read per fact),
        # else a tuple of them (it changes only when productions do).
        self.by_attr: dict[Any, dict[Any, AlphaMemory | tuple[AlphaMemory, ...]]] = {}
        # When no memory of the type tests anything (every fact of the type is in all of
        # them), dispatch is this tuple: no per-fact work at all.
        self.fixed: tuple[AlphaMemory, ...] | None = None

    def refresh(self) -> None:
        plain = self.plain
        if not self.by_attr and all(a.test is None for a in plain):
            self.fixed = tuple(plain)
        else:
            self.fixed = None


class AlphaNetwork:
    """All alpha memories, shared between patterns with the same tests."""

    __slots__ = ("fresh", "memories", "types")

    def __init__(self) -> None:
        self.types: dict[type, _TypeIndex] = {}
        self.memories: dict[Any, AlphaMemory] = {}
        # Memories made since ``settle`` last ran.
        self.fresh: list[AlphaMemory] = []

    def settle(self) -> None:
        """Take the snapshots of the memories made by a new production now, when it is
        built, rather than when its first fact arrives (a cost of building, not of
        matching). A memory shared with earlier productions keeps its own lazy snapshot:
        taking it at each build could cost each new production all the older ones."""
        for amem in self.fresh:
            if amem.key in self.memories:
                amem.snapshot()
                amem.remove_snapshot()
        self.fresh.clear()

    def dispatch(self, cls: type, d: dict[Any, Any]) -> Sequence[AlphaMemory]:
        """The memories a fact of type ``cls`` with values ``d`` belongs to."""
        ti = self.types.get(cls)
        if ti is None:
            return ()
        if ti.fixed is not None:
            return ti.fixed
        out = [a for a in ti.plain if a.test is None or a.test(d)]
        for attr, vmap in ti.by_attr.items():
            v = d.get(attr, MISSING)
            if v is MISSING:
                continue
            try:
                bucket = vmap.get(v)
            except TypeError:
                bucket = vmap.get(freeze(v))
            if bucket is None:
                continue
            if type(bucket) is tuple:
                for a in bucket:
                    if a.test is None or a.test(d):
                        out.append(a)
            elif bucket.test is None or bucket.test(d):  # type: ignore[union-attr]
                out.append(bucket)  # type: ignore[arg-type]
        return out

    def get(
        self,
        cls: type,
        consts: tuple[tuple[Any, Any], ...],
        required: frozenset[Any],
        intra: tuple[tuple[Any, Any], ...],
        existing: Iterator[WME],
    ) -> AlphaMemory:
        key = (
            cls,
            frozenset((k, freeze(v)) for k, v in consts),
            required,
            frozenset(intra),
        )
        amem = self.memories.get(key)
        if amem is not None:
            return amem
        amem = AlphaMemory(key, cls, consts, required, intra)
        ti = self.types.get(cls)
        if ti is None:
            ti = self.types[cls] = _TypeIndex()
        # Discriminate on the constant whose bucket is smallest, preferring attributes
        # already indexed so that a fact looks up few attributes.
        best: tuple[Any, Any] | None = None
        best_rank: tuple[int, int] | None = None
        for k, v in consts:
            try:
                hash(v)
            except TypeError:
                continue
            vmap = ti.by_attr.get(k)
            rank = (0, len(_members(vmap.get(v)))) if vmap is not None else (1, 0)
            if best_rank is None or rank < best_rank:
                best, best_rank = (k, v), rank
        amem.disc = best
        amem.build_test()
        if best is None:
            ti.plain[amem] = None
        else:
            vmap = ti.by_attr.setdefault(best[0], {})
            had = vmap.get(best[1])
            vmap[best[1]] = amem if had is None else (*_members(had), amem)
        ti.refresh()
        self.memories[key] = amem
        self.fresh.append(amem)
        for w in existing:
            if amem.full_test(w.data):
                amem.insert(w)
        return amem

    def drop(self, amem: AlphaMemory) -> None:
        """Free a memory no node uses any more."""
        del self.memories[amem.key]
        ti = self.types[amem.cls]
        if amem.disc is None:
            del ti.plain[amem]
        else:
            k, v = amem.disc
            vmap = ti.by_attr[k]
            bucket = tuple(a for a in _members(vmap[v]) if a is not amem)
            if bucket:
                vmap[v] = bucket[0] if len(bucket) == 1 else bucket
            else:
                del vmap[v]
                if not vmap:
                    del ti.by_attr[k]
        if not ti.plain and not ti.by_attr:
            del self.types[amem.cls]
        else:
            ti.refresh()
        for w in amem.items:
            w.amems.remove(amem)
        amem.items.clear()
