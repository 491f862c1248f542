"""Facts, the working-memory elements (engine input stage).

A :class:`Fact` is a dict (positional values get the keys 0, 1, ...); subclasses are fact
types. The same class serves as a pattern when it holds variables. A fact is an entity,
not a value: it compares and hashes by identity (as a py-rete fact in a network does,
whose equality and hash start from its network id), so it goes in sets and is a dict key,
and mutating it before ``update_fact`` keeps its hash. Inside the network a fact is
represented by a :class:`WME` holding a snapshot of its values, so mutating the user's
object changes nothing until ``update_fact``; no id is ever written into the fact.
"""

from __future__ import annotations

from reprlib import recursive_repr
from typing import TYPE_CHECKING, Any

from streamrules.rete.conditions import AND, OR, ComposableCond, V

if TYPE_CHECKING:
    from streamrules.rete.alpha import AlphaMemory
    from streamrules.rete.tokens import Token

# Key of the snapshot entry holding the WME itself: lets a join read "the fact" with the
# same itemgetter it uses for attributes (``V('f') << Fact(...)``, nested facts).
SELF: Any = type("_SelfKey", (), {"__repr__": lambda self: "<fact>"})()


class Fact(ComposableCond, dict):  # type: ignore[type-arg]
    """A fact (or, holding variables, a pattern); a dict with positional and named values."""

    __slots__ = ("_bind",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            dict.__init__(self, enumerate(args))
            dict.update(self, kwargs)
        else:
            dict.__init__(self, kwargs)

    # Identity, not dict contents: the hash of a mutable object must not change while it
    # is in a set, and the py-rete idiom mutates facts in place (then ``update_fact``).
    # Equality agrees with that hash; ``dict(a) == dict(b)`` compares contents.
    __hash__ = object.__hash__  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __rlshift__(self, other: V) -> Fact:
        if not isinstance(other, V):
            raise TypeError("only a variable V(...) can be bound to a fact pattern")
        self._bind = other
        return self

    # dict defines | as merge; in rule conditions it means OR (py-rete's shorthand).
    def __or__(self, other: Any) -> OR:  # type: ignore[override]
        return ComposableCond.__or__(self, other)

    def __ror__(self, other: Any) -> OR:  # type: ignore[override]
        return ComposableCond.__ror__(self, other)

    def __and__(self, other: Any) -> AND:
        return ComposableCond.__and__(self, other)

    @recursive_repr()
    def __repr__(self) -> str:
        parts: list[str] = []
        n = 0
        while n in self:
            parts.append(repr(self[n]))
            n += 1
        for k, v in self.items():
            if isinstance(k, int) and 0 <= k < n:
                continue
            parts.append(f"{k}={v!r}" if isinstance(k, str) else f"{k!r}={v!r}")
        text = f"{type(self).__name__}({', '.join(parts)})"
        bind = getattr(self, "_bind", None)
        return f"{bind!r} << {text}" if bind is not None else text

    def duplicate(self) -> Fact:
        """A shallow copy of the same type (py-rete's ``duplicate``)."""
        new = type(self).__new__(type(self))
        dict.update(new, self)
        return new


def pattern_bind(p: Fact) -> V | None:
    """The variable a pattern is bound to with ``<<``, if any."""
    return getattr(p, "_bind", None)


class Items(dict[Any, Any]):
    """The contents of a memory node (alpha, beta, negative, production): a dict that
    CPython's cyclic collector keeps tracked.

    An exact dict that is empty at a full collection is untracked, and its next insert
    of a fact or token tracks it again, in the young generation: with thousands of
    productions, most memories are empty most of the time, so each one's next fact made
    two young collections walk it, cold. The collector never untracks a subclass.

    A memory that becomes empty is cleared: its table goes back to CPython's free list of
    small dict tables, and its next item takes the most recently freed one, in cache,
    rather than reading its own table, cold when there are thousands of memories.
    """

    __slots__ = ()


class WME:
    """A fact inside the network: the user's object, a snapshot of its values, bookkeeping."""

    __slots__ = ("alive", "amems", "cls", "data", "fact", "support", "tag", "tokens")

    def __init__(self, fact: Fact, tag: int, data: dict[Any, Any]) -> None:
        self.fact = fact
        self.cls: type = type(fact)
        self.tag = tag
        self.data = data
        # The memories it is in (a list: a fact is in a few; a dict costs more per fact).
        self.amems: list[AlphaMemory] = []
        # Its tokens: none, the only one, or a dict of them (as Token.children; most facts
        # of a stream are in one match).
        self.tokens: dict[Token, None] | Token | None = None
        # None: asserted unconditionally; else the matches (tokens) supporting a logical fact.
        self.support: dict[Token, None] | None = None
        self.alive = True

    def __repr__(self) -> str:
        return f"<WME {self.tag} {self.fact!r}>"


def user_value(v: Any) -> Any:
    """A bound value as user code sees it: facts as the user's objects."""
    return v.fact if type(v) is WME else v


MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "<missing>"})()


def freeze(v: Any) -> Any:
    """A hashable stand-in for an unhashable value, equal exactly when the values are."""
    if isinstance(v, list):
        return ("__list__", tuple(freeze(x) for x in v))
    if isinstance(v, tuple):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return ("__dict__", frozenset((freeze(k), freeze(x)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return frozenset(freeze(x) for x in v)
    try:
        hash(v)
    except TypeError:
        return ("__id__", id(v))
    return v
