"""The curated top-level API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import streamrules
import streamrules.rete

PINNED = {
    "AND", "EXISTS", "NOT", "OR", "Accumulate", "Bind", "Collect", "ConfigError", "Count",
    "DecodeError", "Fact", "Filter", "Listener", "Match", "Max", "Min", "Production",
    "ReteNetwork", "RuleError", "RuleValueError", "StreamRulesError", "Sum", "TransportError", "V",
    "__version__",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(streamrules.__all__) == PINNED
    assert len(streamrules.__all__) == len(PINNED)


def test_every_exported_name_exists() -> None:
    for name in streamrules.__all__:
        assert getattr(streamrules, name) is not None, name


def test_engine_names_are_the_engines_own() -> None:
    for name in streamrules.rete.__all__:
        if name in streamrules.__all__:
            assert getattr(streamrules, name) is getattr(streamrules.rete, name), name


def test_py_rete_style_import_runs_a_rule() -> None:
    from streamrules import Fact, Production, ReteNetwork

    seen: list[str] = []

    @Production(Fact(color="red"))
    def alert_something_red() -> None:
        seen.append("red")

    net = ReteNetwork()
    net.add_production(alert_something_red)
    net.add_fact(Fact(color="red"))
    net.run(1)
    assert seen == ["red"]
