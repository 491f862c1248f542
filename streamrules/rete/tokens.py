"""Tokens (engine stage 2, beta network): partial matches and their tree-based deletion.

A token is one partial match: a link to its parent token, the fact it added, and
``binds``, a flat tuple of bound values whose slot numbers the compiler fixes. Deleting a
token deletes its descendants (``children``) with an explicit stack, never by scanning a
memory; each memory node forgets its own tokens in ``drop_token``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from streamrules.rete.fact import WME

if TYPE_CHECKING:
    from streamrules.rete.beta import Node

# Whether this module runs compiled by mypyc (an extension module, the optional build):
# the constructor calls that the interpreted hot paths write out (beta.py) are then C
# calls, and a compiled class cannot be instantiated without its constructor.
COMPILED: Final = not __file__.endswith((".py", ".pyc"))  # (a .pyc: sources left out)

Emit = Callable[["Token", "WME | None", tuple[Any, ...]], None]
# A token's children: none, the only one (the usual case below a join on one fact, so no
# dict is made for it), or a dict of them (insertion order: deletion order is stable).
Children: TypeAlias = "dict[Token, None] | Token | None"


class Token:
    """A partial match stored in a memory node."""

    __slots__ = (
        "aux",
        "binds",
        "children",
        "count",
        "dead",
        "fired",
        "node",
        "parent",
        "recency",
        "wme",
    )
    count: int
    aux: Any
    fired: bool

    def __init__(
        self, parent: Token | None, wme: WME | None, node: Node, binds: tuple[Any, ...]
    ) -> None:
        # ``count``, ``aux`` and ``fired`` are set only by the nodes that use them
        # (negative/NCC/accumulate counts, production-node state): fewer stores per token.
        self.parent = parent
        self.wme = wme
        self.node = node
        self.binds = binds
        self.children: Children = None
        self.dead = False
        if parent is not None:
            r = parent.recency
            ch = parent.children
            if ch is None:
                parent.children = self
            elif isinstance(ch, dict):
                ch[self] = None
            elif ch is not parent:  # (the root token: see untrack_children)
                parent.children = {ch: None, self: None}
        else:
            r = 0
        if wme is not None:
            if wme.tag > r:
                r = wme.tag
            ts = wme.tokens
            if ts is None:
                wme.tokens = self
            elif isinstance(ts, dict):
                ts[self] = None
            else:
                wme.tokens = {ts: None, self: None}
        self.recency: int = r

    def __repr__(self) -> str:
        return f"<Token {self.node.kind} {self.binds!r}>"


def untrack_children(root: Token) -> None:
    """Keep no children of the network's root token.

    That token is never deleted, so nothing needs them, and keeping them would be one
    entry per first-level match (an order's, on a stream) in one big, churning dict. (A
    cross join at the root finds its matches through the facts' tokens instead.) The
    root becomes its own child: no other token is, and a token made below a parent whose
    ``children`` is the parent itself leaves it so. (Not a marker token: a compiled
    build cannot make a token without its constructor, and a marker has no node to give
    it.)
    """
    root.children = root


def _kill_all(stack: list[Token]) -> None:
    pop = stack.pop
    push = stack.append
    extend = stack.extend
    while stack:
        x = pop()
        if x.dead:
            continue
        x.dead = True
        ch = x.children
        if ch is not None:
            x.children = None
            if isinstance(ch, dict):
                extend(ch)
            else:
                push(ch)
        w = x.wme
        if w is not None:  # out of w.tokens (None, this token, or a dict)
            ts = w.tokens
            if ts is x:
                w.tokens = None
            else:
                del ts[x]  # type: ignore[union-attr]
        x.node.drop_token(x)


def tokens_of(w: WME) -> list[Token]:
    """``w``'s tokens, as a list."""
    ts = w.tokens
    if ts is None:
        return []
    if isinstance(ts, dict):
        return list(ts)
    return [ts]


def _unchild(t: Token) -> None:
    """Take ``t`` out of its parent's children."""
    p = t.parent
    if p is not None:
        ch = p.children
        if ch is t:
            p.children = None
        elif isinstance(ch, dict):
            ch.pop(t, None)


def kill(t: Token) -> None:
    """Delete a token and all its descendants."""
    _unchild(t)
    _kill_all([t])


def kill_many(ts: list[Token]) -> None:
    """Delete these tokens (alive or not) and all their descendants, in one pass."""
    for t in ts:  # _unchild(t), written out
        p = t.parent
        if p is not None:
            ch = p.children
            if ch is t:
                p.children = None
            elif isinstance(ch, dict):
                ch.pop(t, None)
    _kill_all(ts)


def kill_children(t: Token) -> None:
    ch = t.children
    if ch is not None:
        t.children = None
        _kill_all(list(ch) if isinstance(ch, dict) else [ch])
