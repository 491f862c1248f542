"""Condition language of the engine (rule-authoring stage): variables, AND/OR/NOT/EXISTS,
Filter, Bind and the accumulate conditions.

These classes only describe a left-hand side; :mod:`streamrules.rete.compiler` turns them
into network nodes. The shapes follow py-rete's public API so that its rules run unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class V:
    """A pattern variable; ``V('x') << Fact(...)`` binds the whole fact to ``x``."""

    __slots__ = ("_hash", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._hash = hash(("V", name))

    def __repr__(self) -> str:
        return f"V({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, V) and other.name == self.name

    def __hash__(self) -> int:
        return self._hash

    def __lshift__(self, pattern: Any) -> Any:
        from streamrules.rete.fact import Fact

        if not isinstance(pattern, Fact):
            raise TypeError("only a Fact pattern can be bound to a variable with <<")
        return pattern.__rlshift__(self)


class ComposableCond:
    """Mixin giving conditions the ``&``, ``|`` and ``~`` operators (py-rete's shorthand)."""

    __slots__ = ()

    def __and__(self, other: Any) -> AND:
        left = tuple(self) if isinstance(self, AND) else (self,)
        right = tuple(other) if isinstance(other, AND) else (other,)
        return AND(*left, *right)

    def __rand__(self, other: Any) -> AND:
        return AND(other, self)

    def __or__(self, other: Any) -> OR:
        left = tuple(self) if isinstance(self, OR) else (self,)
        right = tuple(other) if isinstance(other, OR) else (other,)
        return OR(*left, *right)

    def __ror__(self, other: Any) -> OR:
        return OR(other, self)

    def __invert__(self) -> NOT:
        return NOT(self)


class _Group(ComposableCond, tuple):  # type: ignore[type-arg]
    """Base of the connectives: a tuple of sub-conditions."""

    __slots__ = ()

    def __new__(cls, *args: Any) -> _Group:
        return super().__new__(cls, args)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self))})"


class AND(_Group):
    """All sub-conditions hold."""

    __slots__ = ()


class OR(_Group):
    """At least one holds; compiled to one network branch per disjunct (as in py-rete)."""

    __slots__ = ()


class NOT(_Group):
    """No match for the (conjunction of the) sub-conditions exists."""

    __slots__ = ()


class EXISTS(_Group):
    """At least one match exists; the match is produced once, whatever their number."""

    __slots__ = ()


class Filter(ComposableCond):
    """A test on bound variables; ``fn``'s parameters are variable names."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError("Filter needs a callable")
        self.fn = fn

    def __repr__(self) -> str:
        return f"Filter({_fn_name(self.fn)})"


class Bind(ComposableCond):
    """Binds ``fn(...)`` (parameters are variable names) to the variable ``to``."""

    __slots__ = ("fn", "to")

    def __init__(self, fn: Callable[..., Any], to: V) -> None:
        if not callable(fn):
            raise TypeError("Bind needs a callable")
        if not isinstance(to, V):
            raise TypeError("Bind's target must be a variable V(...)")
        self.fn = fn
        self.to = to

    def __repr__(self) -> str:
        return f"Bind({_fn_name(self.fn)}, {self.to!r})"


def _var_name(v: str | V, what: str) -> str:
    if isinstance(v, V):
        return v.name
    if isinstance(v, str) and v:
        return v
    raise TypeError(f"{what} must be a variable name or V(...), got {v!r}")


class Accumulate(ComposableCond):
    """Base of Count/Sum/Min/Max/Collect: an aggregate over the facts a pattern matches.

    ``kind`` is the aggregate, ``value`` the variable aggregated (None: the fact itself),
    ``into`` the variable receiving the result, ``group_by`` the grouping variables.
    """

    __slots__ = ("group_by", "into", "kind", "pattern", "value")
    kind: str

    def __init__(
        self,
        value: str | V | None,
        pattern: Any,
        into: str | V,
        group_by: Iterable[str | V] = (),
    ) -> None:
        from streamrules.rete.fact import Fact

        if not isinstance(pattern, Fact):
            raise TypeError(f"{type(self).__name__} needs a Fact pattern, got {pattern!r}")
        self.pattern = pattern
        self.value = None if value is None else _var_name(value, "the aggregated value")
        self.into = _var_name(into, "into")
        if isinstance(group_by, (str, V)):
            group_by = (group_by,)
        self.group_by = tuple(_var_name(g, "group_by") for g in group_by)

    def __repr__(self) -> str:
        parts = [] if self.value is None else [f"V({self.value!r})"]
        parts.append(repr(self.pattern))
        parts.append(f"into={self.into!r}")
        if self.group_by:
            parts.append(f"group_by={self.group_by!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


class Count(Accumulate):
    """Number of matching facts (per group)."""

    __slots__ = ()
    kind = "count"

    def __init__(self, pattern: Any, into: str | V, group_by: Iterable[str | V] = ()) -> None:
        super().__init__(None, pattern, into, group_by)


class Sum(Accumulate):
    """Sum of a variable over the matching facts (0 when none)."""

    __slots__ = ()
    kind = "sum"

    def __init__(
        self, value: str | V, pattern: Any, into: str | V, group_by: Iterable[str | V] = ()
    ) -> None:
        super().__init__(value, pattern, into, group_by)


class Min(Accumulate):
    """Smallest value of a variable (None when nothing matches)."""

    __slots__ = ()
    kind = "min"

    def __init__(
        self, value: str | V, pattern: Any, into: str | V, group_by: Iterable[str | V] = ()
    ) -> None:
        super().__init__(value, pattern, into, group_by)


class Max(Accumulate):
    """Largest value of a variable (None when nothing matches)."""

    __slots__ = ()
    kind = "max"

    def __init__(
        self, value: str | V, pattern: Any, into: str | V, group_by: Iterable[str | V] = ()
    ) -> None:
        super().__init__(value, pattern, into, group_by)


class Collect(Accumulate):
    """Tuple of a variable's values, or of the facts: ``Collect(pattern, into=...)``.

    Sorted by value when the values sort, else in fact assertion order.
    """

    __slots__ = ()
    kind = "collect"

    def __init__(
        self,
        what: Any,
        pattern: Any = None,
        into: str | V | None = None,
        group_by: Iterable[str | V] = (),
    ) -> None:
        from streamrules.rete.fact import Fact

        if into is None:
            raise TypeError("Collect needs into=...")
        if isinstance(what, Fact):
            if pattern is not None and pattern is not what:
                raise TypeError("Collect(pattern, into=...) collects facts; give one pattern")
            super().__init__(None, what, into, group_by)
        else:
            super().__init__(what, pattern, into, group_by)


def _fn_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
