"""streamrules: an event-streaming rules processor.

Kafka events become facts on an event-time clock, an incremental Rete network (py-rete's
authoring API on a Rete/UL matcher) fires productions, and every firing becomes a decision
on an output topic. The top-level API is the engine's authoring API, so that a py-rete user
changes only the import; everything else is reached through its own module
(``streamrules.pipeline``, ``streamrules.testing``, ``streamrules.facts`` ...).
"""

from __future__ import annotations

from streamrules.errors import (
    ConfigError,
    DecodeError,
    RuleError,
    RuleValueError,
    StreamRulesError,
    TransportError,
)
from streamrules.rete import (
    AND,
    EXISTS,
    NOT,
    OR,
    Accumulate,
    Bind,
    Collect,
    Count,
    Fact,
    Filter,
    Listener,
    Match,
    Max,
    Min,
    Production,
    ReteNetwork,
    Sum,
    V,
)

__version__ = "0.1.0"

__all__ = [
    "AND",
    "EXISTS",
    "NOT",
    "OR",
    "Accumulate",
    "Bind",
    "Collect",
    "ConfigError",
    "Count",
    "DecodeError",
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
    "StreamRulesError",
    "Sum",
    "TransportError",
    "V",
    "__version__",
]
