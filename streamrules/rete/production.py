"""Productions (rule-authoring stage): a left-hand side and an action, built with
``@Production(...)`` as a decorator, py-rete style."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, overload

from streamrules.errors import RuleError


class Production:
    """A rule: ``@Production(conditions, salience=0, name=None)`` around its action.

    The action's parameters are filled by name: bound variables, ``net`` (the network)
    and values given to ``ReteNetwork.inject``. Calling the decorated object calls the
    function itself, dropping keywords it does not take (as py-rete does: ``p(x=3,
    net=net)`` calls ``p``'s function with ``x`` alone when that is all it takes).
    """

    def __init__(self, pattern: Any = None, *, salience: int = 0, name: str | None = None) -> None:
        if not isinstance(salience, int) or isinstance(salience, bool):
            raise RuleError(f"salience must be an integer, got {salience!r}", production=name)
        self.pattern = pattern
        self.salience = salience
        self._name = name
        self.__wrapped__: Callable[..., Any] | None = None
        self.params: list[tuple[str, bool]] = []
        self.var_kw = False
        # The names the action takes by keyword (a direct call drops other keywords).
        self._kw_names: frozenset[str] = frozenset()
        # Whether the action can take its arguments by position, in ``params`` order (the
        # cheaper call: no keyword dict per firing).
        self.positional = True

    @property
    def name(self) -> str:
        if self._name is not None:
            return self._name
        if self.__wrapped__ is not None:
            return str(getattr(self.__wrapped__, "__name__", "production"))
        return "production"

    @overload
    def __call__(self, func: Callable[..., Any], /) -> Production: ...

    @overload
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # As a decorator (the first call) it gives itself back: typed so, for the rule
        # modules users check with mypy. Afterwards it calls the action.
        if self.__wrapped__ is None:
            if len(args) != 1 or kwargs or not callable(args[0]):
                raise RuleError("use Production(...) as a decorator around a function")
            func = args[0]
            self.__wrapped__ = func
            sig = inspect.signature(func)
            for p in sig.parameters.values():
                if p.kind is inspect.Parameter.VAR_KEYWORD:
                    self.var_kw = True
                elif p.kind is not inspect.Parameter.VAR_POSITIONAL:
                    self.params.append((p.name, p.default is not inspect.Parameter.empty))
                    if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
                        self.positional = False
            by_kw = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            self._kw_names = frozenset(p.name for p in sig.parameters.values() if p.kind in by_kw)
            # *args would take what positional arguments are left: keep keywords then.
            if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values()):
                self.positional = False
            for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
                if hasattr(func, attr):
                    setattr(self, attr, getattr(func, attr))
            return self
        if kwargs and not self.var_kw:
            kwargs = {k: v for k, v in kwargs.items() if k in self._kw_names}
        return self.__wrapped__(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Production({self.name!r}, salience={self.salience}, pattern={self.pattern!r})"
