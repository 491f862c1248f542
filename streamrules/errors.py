"""One exception tree for the whole package.

::

    StreamRulesError                 root: catch this to catch everything of ours
    ├── ConfigError                  bad settings, flags, environment or TOML; exit 2 at start
    ├── RuleError                    a bad production (unbound variable, bad rule file), an
    │   │                            action that raised, a misuse of the network
    │   └── RuleValueError           also a ValueError: where py-rete raises ValueError (a
    │                                production added twice, removing a production or a fact
    │                                the network does not hold, a fact holding a variable)
    ├── DecodeError                  a record that is not a valid event; carries the reason
    │                                and, when known, topic / partition / offset
    └── TransportError               Kafka (or other transport) failure; ``retriable`` says
                                     whether trying again may help

The engine (``streamrules.rete``) raises only ``RuleError`` (``RuleValueError`` for the
misuses py-rete reports as ``ValueError``); it imports this module and
nothing else of the package.
"""

from __future__ import annotations


class StreamRulesError(Exception):
    """Root of every error raised by streamrules."""


class ConfigError(StreamRulesError):
    """Invalid configuration: a flag, an environment variable, a TOML file or a rules path."""


class RuleError(StreamRulesError):
    """A production that cannot be compiled, or whose action failed while firing.

    ``production`` names the production and ``condition`` the condition concerned, when
    known, so that the message can point the rule author at the right line.
    """

    def __init__(
        self, message: str, *, production: str | None = None, condition: str | None = None
    ) -> None:
        parts = [message]
        if production is not None:
            parts.append(f"production={production!r}")
        if condition is not None:
            parts.append(f"condition={condition}")
        super().__init__(" ".join(parts) if len(parts) > 1 else message)
        self.production = production
        self.condition = condition


class RuleValueError(RuleError, ValueError):
    """A ``RuleError`` that is also a ``ValueError``: the misuses py-rete reports with
    ``ValueError`` (so that code written against py-rete, ``except ValueError``, still
    catches them): adding a production that is already in the network, removing one that
    is not, removing or updating a fact the network does not hold, a fact holding a
    variable."""


class DecodeError(StreamRulesError):
    """A record that does not decode to a valid event.

    ``reason`` is one of the contract's dead-letter reasons (``invalid_json``, ``schema``,
    ``unknown_type``, ``late_event``, ``future_event``, ``rule_error``).
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.topic = topic
        self.partition = partition
        self.offset = offset


class TransportError(StreamRulesError):
    """A failure talking to Kafka; ``retriable`` tells whether retrying may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
