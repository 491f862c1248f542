"""The rule engine (matching stage of the flow): py-rete's authoring API on Doorenbos'
Rete/UL matcher, pure Python, synchronous and deterministic.

Imports nothing of the rest of the package but :mod:`streamrules.errors`, and no asyncio.
"""

from __future__ import annotations

from streamrules.errors import RuleError, RuleValueError
from streamrules.rete.agenda import Listener, Match
from streamrules.rete.conditions import (
    AND,
    EXISTS,
    NOT,
    OR,
    Accumulate,
    Bind,
    Collect,
    Count,
    Filter,
    Max,
    Min,
    Sum,
    V,
)
from streamrules.rete.fact import Fact
from streamrules.rete.network import ReteNetwork
from streamrules.rete.production import Production

__all__ = [
    "AND",
    "EXISTS",
    "NOT",
    "OR",
    "Accumulate",
    "Bind",
    "Collect",
    "Count",
    "Fact",
    "Filter",
    "Listener",
    "Match",
    "Max",
    "Min",
    "Production",
    "ReteNetwork",
    "RuleError",
    "RuleValueError",
    "Sum",
    "V",
]
