"""Which build of the package runs: pure Python, or its hot modules compiled by mypyc.

The compiled build is optional: a plain ``pip install`` gives the pure-Python package (no
compiler needed), ``STREAMRULES_COMPILE=1 pip install .`` (or ``make compiled``, into
``build/compiled``) compiles the modules below to C extension modules next to their
sources, which Python then imports instead. The two builds behave the same (the engine
and pipeline tests run on both); the compiled one spends about half the CPU per event.

``COMPILED_MODULES`` is the one list of what gets compiled: ``setup.py`` reads it from
this file, so this module imports nothing of the package. Left interpreted: what users
subclass or that relies on CPython's object layout (``rete/fact.py``: ``Fact`` is a dict;
``rete/conditions.py``: tuples; ``rete/production.py``; ``facts/types.py``: slotted
``Fact`` subclasses) and ``codec/`` (``exec`` and ``__class__`` assignment).
"""

from __future__ import annotations

import importlib.util

COMPILED_MODULES: tuple[str, ...] = (
    # the engine: matching, joins, negation, aggregation, agenda, the network
    "streamrules.rete.accumulate",
    "streamrules.rete.agenda",
    "streamrules.rete.alpha",
    "streamrules.rete.beta",
    "streamrules.rete.compiler",
    "streamrules.rete.cross",
    "streamrules.rete.negative",
    "streamrules.rete.network",
    "streamrules.rete.tokens",
    # facts: mapping events to facts, the clock, expiry and working memory
    "streamrules.facts.clock",
    "streamrules.facts.context",
    "streamrules.facts.expiry",
    "streamrules.facts.mapping",
    "streamrules.facts.memory",
    # the glue: decode -> map -> expire -> match -> fire -> decisions
    "streamrules.pipeline",
)


def compiled_modules() -> list[str]:
    """Those of ``COMPILED_MODULES`` that Python loads from an extension module (found
    without importing them)."""
    found = []
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin is not None and not origin.endswith((".py", ".pyc")):
            found.append(name)
    return found


def compiled() -> bool:
    """Whether this is the compiled build (every module of the list compiled)."""
    return len(compiled_modules()) == len(COMPILED_MODULES)


def describe() -> str:
    """The build in a few words, for ``streamrules --version`` and logs."""
    done = compiled_modules()
    if not done:
        return "pure Python"
    if len(done) == len(COMPILED_MODULES):
        return f"compiled (mypyc): {len(done)} modules"
    missing = sorted(set(COMPILED_MODULES) - set(done))
    return f"partly compiled (mypyc): {len(done)} modules; interpreted: {', '.join(missing)}"
