"""The memory layout of the nodes on an event's path (see ``streamrules.rete.beta.Node``):
their hot fields share the object header's cache line, and the four kinds have one size.

The layout is what keeps an event's cost nearly flat in the number of productions
(benchmark (c)); a slot added in the wrong class would undo it without failing anything
else, so it is checked here, by reading where CPython put each field."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from streamrules.rete.alpha import AlphaMemory
from streamrules.rete.beta import BetaMemory, JoinNode, Node, PNode
from streamrules.rete.tokens import COMPILED

# A compiled build's classes are C structs that mypyc lays out (no slots to place).
pytestmark = pytest.mark.skipif(COMPILED, reason="CPython's slot layout: pure-Python build only")

ON_PATH = (AlphaMemory, BetaMemory, JoinNode, PNode)
LINE = 64  # bytes: a cache line, of which the object's header takes the first 16


def _slots(cls: type) -> tuple[str, ...]:
    return tuple(cls.__dict__.get("__slots__", ()))


def _hot(cls: type) -> tuple[str, ...]:
    """The slots of the class's first base declaring any (the hot fields)."""
    for base in reversed(cls.__mro__):
        if base not in (object, Node) and _slots(base):
            return _slots(base)
    raise AssertionError(f"{cls.__name__} declares no slots")


def _offsets(cls: type) -> dict[str, int]:
    """Each slot's byte offset in an instance, found by storing a distinct object in
    every slot and looking for its address in the instance's memory."""
    names = [n for base in cls.__mro__ for n in _slots(base)]
    obj: Any = object.__new__(cls)
    marks = {name: object() for name in names}
    for name, mark in marks.items():
        setattr(obj, name, mark)
    words = (ctypes.c_void_p * (cls.__basicsize__ // 8)).from_address(id(obj))
    where = {words[i]: i * 8 for i in range(len(words))}
    return {name: where[id(mark)] for name, mark in marks.items()}


@pytest.mark.parametrize("cls", ON_PATH, ids=lambda c: c.__name__)
def test_the_hot_fields_share_the_headers_cache_line(cls: type) -> None:
    hot = _hot(cls)
    assert hot, cls
    offsets = _offsets(cls)
    assert {n: offsets[n] for n in hot if offsets[n] + 8 > LINE} == {}
    # and nothing else is there: the hot fields come first
    assert sorted(offsets[n] for n in hot) == list(range(16, 16 + 8 * len(hot), 8))


def _block(cls: type) -> int:
    """The size of the allocator's blocks holding an instance: its size and the cyclic
    collector's header (16 bytes), rounded up to 16."""
    return (cls.__basicsize__ + 16 + 15) // 16 * 16


def test_the_nodes_of_a_production_have_one_size() -> None:
    """One size class of the small-object allocator: the nodes built for a production
    are allocated next to each other; and a whole number of cache lines, so that each
    object starts at the same place in a line as the others of its pool (its first)."""
    blocks = {_block(cls) for cls in ON_PATH}
    assert len(blocks) == 1, {cls.__name__: _block(cls) for cls in ON_PATH}
    (block,) = blocks
    assert block % LINE == 0 and block <= 512, block
