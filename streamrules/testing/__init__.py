"""Test driver: run rules against events on event time, without Kafka.

``RulesTestDriver`` feeds events through the real pipeline (decode, facts, clock, rules)
and keeps the decisions and dead letters; ``streamrules.testing.plugin`` provides the
``rules_driver`` pytest fixture.
"""

from streamrules.testing.driver import RulesTestDriver, to_ms

__all__ = ["RulesTestDriver", "to_ms"]
