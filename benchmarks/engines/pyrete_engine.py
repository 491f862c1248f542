"""py-rete 0.0.6 (the version on PyPI) on the benchmark workloads, where expressible.

PyPI's 0.0.6 has the old triple-based API (``Network``, ``Has``, ``Neg``, ``Filter``,
``WME``), not the ``Fact``/``Production`` API of its current README: a fact is several
``(identifier, attribute, value)`` triples, constants are strings, and numeric tests are
``eval()``'d strings. It has no actions and no agenda: a production node only stores its
matches, so each one here records its firings when a match reaches it. Its retraction
mutates a list while iterating over it, so stale tokens pile up (the drift column shows
the cost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from py_rete.common import WME, Filter, Has, Rule
from py_rete.network import Network

from benchmarks.engines import Unsupported
from benchmarks.workloads import N_SHARED, Order

NAME = "py-rete 0.0.6"


def _yn(b: bool) -> str:
    return "yes" if b else "no"


class _Base:
    def __init__(self) -> None:
        self.net = Network()
        self.fired: list[tuple[Any, Any, Any]] = []
        self.decisions: list[tuple[Any, ...]] = []

    def _production(self, lhs: Rule, tag: Any) -> None:
        pnode = self.net.add_production(lhs)
        original = pnode.left_activation
        fired = self.fired.append

        # py-rete has no actions: record each match as it reaches the production node.
        def left_activation(token: Any, wme: Any, binding: Any = None) -> None:
            original(token, wme, binding)
            fired((tag, pnode.items[-1], binding))

        pnode.left_activation = left_activation

    def _add(self, *triples: tuple[str, str, str]) -> list[WME]:
        wmes = [WME(*t) for t in triples]
        for w in wmes:
            self.net.add_wme(w)
        return wmes

    def _remove(self, wmes: list[WME]) -> None:
        for w in wmes:
            self.net.remove_wme(w)


class orders(_Base):
    def __init__(self) -> None:
        super().__init__()
        rules = (
            (0, [Has("$o", "friday", "yes")]),
            (30, [Has("$o", "friday", "no"), Has("$o", "logged_in", "yes"),
                  Has("$o", "items", "$n"), Filter("$n > 2")]),
            (30, [Has("$o", "friday", "no"), Has("$o", "logged_in", "no"),
                  Has("$o", "items", "$n"), Filter("$n > 2")]),
            (20, [Has("$o", "friday", "no"), Has("$o", "logged_in", "yes"),
                  Has("$o", "items", "$n"), Filter("$n <= 2")]),
            (0, [Has("$o", "friday", "no"), Has("$o", "logged_in", "no"),
                 Has("$o", "items", "$n"), Filter("$n <= 2")]),
        )  # fmt: skip
        for pct, conds in rules:
            self._production(Rule(*conds), pct)

    def feed(self, chunk: Sequence[Order]) -> None:
        out = self.decisions.append
        fired = self.fired
        for o in chunk:
            oid = o["order_id"]
            wmes = self._add(
                (oid, "friday", _yn(o["friday"])),
                (oid, "logged_in", _yn(o["logged_in"])),
                (oid, "items", str(o["items"])),
            )
            for pct, _, _ in fired:
                out((oid, pct))
            fired.clear()
            self._remove(wmes)


def joins(customers: Sequence[dict[str, Any]]) -> Any:
    raise Unsupported(
        "not expressible: the amount test must be a Filter, and py-rete 0.0.6 crashes on a "
        "Filter before a pattern with variables (AttributeError: 'Filter' object has no "
        "attribute 'contain') and on a Filter after a Neg (TypeError: its binding is None)"
    )


class scaling(_Base):
    def __init__(self, rules: int) -> None:
        super().__init__()
        for i in range(rules):
            self._production(Rule(Has("$k", "ev", str(i)), Has("$k", "shared", "yes")), i)
        for k in range(N_SHARED):
            self._add((f"k{k}", "shared", "yes"))

    def feed(self, chunk: Sequence[tuple[int, int, int]]) -> None:
        out = self.decisions.append
        fired = self.fired
        for eid, kind, key in chunk:
            wmes = self._add((f"k{key}", "ev", str(kind)))
            for i, _, _ in fired:
                out((eid, i))
            fired.clear()
            self._remove(wmes)


def manners(guests: Sequence[tuple[str, str, int]], n: int) -> Any:
    raise Unsupported(
        "not expressible: py-rete 0.0.6 has no actions, no modify and no agenda or "
        "salience to drive Manners' search"
    )
