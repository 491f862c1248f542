"""topics/topics.toml: loading, validation, overrides, and the apply planner (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamrules.errors import ConfigError
from streamrules.topics import (
    DEFAULT_TOPICS_FILE,
    REQUIRED_TOPICS,
    TopicSpec,
    TopicState,
    load_schemas,
    load_topics,
    plan,
)

GOOD = """
[defaults]
replication_factor = 1
[defaults.config]
"cleanup.policy" = "delete"
[topics.orders]
partitions = 6
[topics.incidents]
partitions = 3
[topics.decisions]
partitions = 6
[topics."decisions.dlq"]
partitions = 1
[topics."decisions.dlq".config]
"retention.ms" = 2592000000
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.toml"
    path.write_text(text)
    return path


def test_the_shipped_file_defines_the_contract_topics() -> None:
    topics = load_topics()
    assert topics.path == DEFAULT_TOPICS_FILE
    assert set(REQUIRED_TOPICS) <= set(topics.names)
    for spec in topics.topics:
        assert spec.partitions >= 1 and spec.replication_factor >= 1
        assert spec.configs["cleanup.policy"] == "delete"
        assert int(spec.configs["retention.ms"]) > 0
        assert spec.description
    # Rebuilding working memory and the 30-day error budget need incidents kept > 30 days.
    assert int(topics.get("incidents").configs["retention.ms"]) > 30 * 24 * 3600 * 1000
    # Keys as the contract says.
    assert topics.get("orders").key == "customer_id"
    assert topics.get("incidents").key == "service"


def test_defaults_and_values_as_kafka_strings(tmp_path: Path) -> None:
    topics = load_topics(write(tmp_path, GOOD))
    dlq = topics.get("decisions.dlq")
    assert dlq.replication_factor == 1
    assert dlq.configs == {"cleanup.policy": "delete", "retention.ms": "2592000000"}
    assert topics.get("orders").configs == {"cleanup.policy": "delete"}
    assert topics.default_configs == {"cleanup.policy": "delete"}
    assert topics.with_overrides(partitions=2).renamed({}).default_configs == topics.default_configs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[topics.orders\npartitions = 1", "not valid TOML"),
        (
            GOOD[: GOOD.index('[topics."decisions.dlq"]')],
            "missing required topic(s) ['decisions.dlq']",
        ),
        (GOOD.replace("partitions = 6", "partitions = 0", 1), "partitions must be an integer >= 1"),
        (GOOD.replace("partitions = 6", 'partitions = "6"', 1), "partitions must be an integer"),
        (GOOD.replace("replication_factor = 1", ""), "replication_factor is missing"),
        (
            GOOD.replace('"cleanup.policy"', '"retention.m"'),
            "unknown Kafka topic config 'retention.m'",
        ),
        (GOOD.replace('= "delete"', '= "purge"'), "cleanup.policy must be"),
        (GOOD + "[topics.orders.extra]\n", "unknown key(s) ['extra']"),
        (GOOD + "[other]\n", "unknown top-level key(s) ['other']"),
        (GOOD + '[topics."bad topic"]\npartitions = 1\n', "invalid Kafka topic name"),
        (
            GOOD + '[topics.x]\npartitions = 1\n[topics.x.config]\n"min.insync.replicas" = 2\n',
            "min.insync.replicas=2 is more than replication_factor=1",
        ),
    ],
)
def test_bad_files_raise_config_error_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_topics(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="topics file not found"):
        load_topics(tmp_path / "nope.toml")


def test_overrides_and_renaming() -> None:
    topics = load_topics().with_overrides(partitions=2, replication_factor=3)
    assert {t.partitions for t in topics.topics} == {2}
    assert {t.replication_factor for t in topics.topics} == {3}
    renamed = topics.renamed({"orders": "prod.orders"})
    assert renamed.names[0] == "prod.orders" and "incidents" in renamed.names
    assert renamed.get("prod.orders").configs == topics.get("orders").configs
    with pytest.raises(ConfigError):
        load_topics().with_overrides(partitions=0)


def test_schemas_are_loaded_by_event_type() -> None:
    schemas = load_schemas()
    for event_type in ("order_placed", "incident_opened", "incident_resolved"):
        assert isinstance(schemas[event_type], dict)


# -- the planner, against a simulated cluster -----------------------------------------------


def apply_to(state: dict[str, TopicState], specs: list[TopicSpec]) -> dict[str, TopicState]:
    """What a cluster looks like after carrying out plan(specs, state): the oracle."""
    todo = plan(specs, state)
    out = dict(state)
    for spec in todo.create:
        out[spec.name] = TopicState(
            spec.name,
            spec.partitions,
            spec.replication_factor,
            dict(spec.configs),
            dict(spec.configs),
        )
    for name, total in todo.add_partitions.items():
        s = out[name]
        out[name] = TopicState(name, total, s.replication_factor, s.configs, s.dynamic_configs)
    for name, dynamic in todo.set_configs.items():
        s = out[name]
        out[name] = TopicState(
            name, s.partitions, s.replication_factor, {**s.configs, **dynamic}, dict(dynamic)
        )
    return out


NAMES = ["a", "b", "c"]
KEYS = ["retention.ms", "cleanup.policy", "max.message.bytes"]
VALUES = {
    "retention.ms": ["1000", "2000"],
    "cleanup.policy": ["delete", "compact"],
    "max.message.bytes": ["100", "200"],
}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, str]:
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True))
    return {k: draw(st.sampled_from(VALUES[k])) for k in keys}


specs_st = st.lists(
    st.builds(
        TopicSpec,
        name=st.sampled_from(NAMES),
        partitions=st.integers(1, 5),
        replication_factor=st.integers(1, 2),
        configs=configs(),
    ),
    unique_by=lambda s: s.name,
)


@st.composite
def states(draw: st.DrawFn) -> dict[str, TopicState]:
    out = {}
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        dynamic = draw(configs())
        defaults = {
            "retention.ms": "604800000",
            "cleanup.policy": "delete",
            "max.message.bytes": "1048588",
        }
        out[name] = TopicState(
            name, draw(st.integers(1, 5)), draw(st.integers(1, 2)), {**defaults, **dynamic}, dynamic
        )
    return out


@given(specs_st, states())
def test_plan_is_idempotent_and_reports_exactly_the_unfixable(
    specs: list[TopicSpec], state: dict[str, TopicState]
) -> None:
    after = apply_to(state, specs)
    second = plan(specs, after)
    assert not second.has_changes
    # Drift: exactly the topics that exist with more partitions or another replication factor.
    expected_drift = {
        s.name
        for s in specs
        if s.name in state
        and (
            s.partitions < state[s.name].partitions
            or s.replication_factor != state[s.name].replication_factor
        )
    }
    drifted = {d.split(" ", 1)[0] for d in plan(specs, state).drift}
    assert drifted == expected_drift
    for spec in specs:
        have = after[spec.name]
        assert (
            have.partitions == max(spec.partitions, state[spec.name].partitions)
            if spec.name in state
            else spec.partitions
        )
        for key, value in spec.configs.items():
            assert have.configs[key] == value
        # A config someone set on the topic and the file does not mention is kept.
        if spec.name in state:
            for key, value in state[spec.name].dynamic_configs.items():
                if key not in spec.configs:
                    assert have.dynamic_configs.get(key) == value


def test_plan_merges_hand_set_configs_into_the_alter_request() -> None:
    state = {
        "orders": TopicState(
            "orders",
            6,
            1,
            {"retention.ms": "1", "segment.ms": "5"},
            {"retention.ms": "1", "segment.ms": "5"},
        )
    }
    todo = plan([TopicSpec("orders", 6, 1, {"retention.ms": "2"})], state)
    assert todo.set_configs == {"orders": {"retention.ms": "2", "segment.ms": "5"}}
    assert todo.config_changes == {"orders": {"retention.ms": ("1", "2")}}
    assert todo.describe() == ["set orders retention.ms: 1 -> 2"]


def test_cleanup_policy_order_does_not_matter() -> None:
    state = {"t": TopicState("t", 1, 1, {"cleanup.policy": "delete,compact"}, {})}
    assert not plan([TopicSpec("t", 1, 1, {"cleanup.policy": "compact,delete"})], state).has_changes
