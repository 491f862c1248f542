"""One module per engine, each with the same four workloads (see ``benchmarks.harness``):

- ``orders()`` and ``joins(customers)`` and ``scaling(rules)`` return a runner: an
  object with ``feed(chunk)`` (process each input, one at a time: insert, fire, retract)
  and ``decisions`` (a list of tuples, checked against the plain-Python floor);
- ``manners(guests, n)`` returns an object with ``run() -> firings`` and
  ``seating() -> list of guest names``.

A workload an engine cannot run raises ``Unsupported(reason)`` from its factory.
"""

from __future__ import annotations


class Unsupported(Exception):
    """The engine cannot express or run this workload; the message says why."""


ENGINES = ("streamrules", "clips", "durable", "experta", "pyrete", "plain")
