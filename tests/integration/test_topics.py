"""``streamrules topics apply|describe`` and kafka_admin against the real broker."""

from __future__ import annotations

import pytest

from streamrules import cli
from streamrules.localkafka import run_sync
from streamrules.topics import load_topics, plan
from streamrules.transport import kafka_admin
from tests.integration.conftest import unique_name

pytestmark = pytest.mark.integration


def cli_main(argv: list[str]) -> int:
    """The real ``streamrules`` entry point with only the command under test registered,
    so that this test does not depend on every other command importing cleanly."""
    saved = cli.COMMANDS
    cli.COMMANDS = ("topics",)
    try:
        return cli.main(argv)
    finally:
        cli.COMMANDS = saved


@pytest.fixture
def names(kafka_bootstrap: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """Unique cluster names for the four topics; deleted after the test."""
    mapping = {name: unique_name(request, name) for name in load_topics().names}
    request.addfinalizer(
        lambda: run_sync(kafka_admin.delete_topics(kafka_bootstrap, list(mapping.values())))
    )
    return mapping


def _topic_flags(names: dict[str, str]) -> list[str]:
    return [
        "--orders-topic",
        names["orders"],
        "--incidents-topic",
        names["incidents"],
        "--decisions-topic",
        names["decisions"],
        "--dlq-topic",
        names["decisions.dlq"],
    ]


def _apply(bootstrap: str, names: dict[str, str], *extra: str) -> int:
    return cli_main(
        ["topics", "apply", "--bootstrap-servers", bootstrap, *_topic_flags(names), *extra]
    )


def test_apply_creates_then_is_idempotent(
    kafka_bootstrap: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _apply(kafka_bootstrap, names) == 0
    out = capsys.readouterr().out
    for real in names.values():
        assert f"create {real}" in out

    wanted = load_topics().renamed(names)
    state = run_sync(kafka_admin.describe_topics(kafka_bootstrap, wanted.names))
    for spec in wanted.topics:
        have = state[spec.name]
        assert have.partitions == spec.partitions
        assert have.replication_factor == spec.replication_factor
        for key, value in spec.configs.items():
            assert have.configs[key] == value
        assert all(leader >= 0 for leader in have.leaders)

    assert _apply(kafka_bootstrap, names) == 0
    assert "topics up to date" in capsys.readouterr().out
    assert not plan(wanted.topics, state).has_changes


def test_apply_grows_partitions_fixes_configs_and_keeps_hand_set_ones(
    kafka_bootstrap: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _apply(kafka_bootstrap, names) == 0
    orders = names["orders"]
    # An operator changed retention and set another config by hand.
    run_sync(
        kafka_admin.set_topic_configs(
            kafka_bootstrap,
            {orders: {"retention.ms": "1000", "max.message.bytes": "2000000"}},
        )
    )
    capsys.readouterr()
    assert _apply(kafka_bootstrap, names, "--partitions-override", "8") == 0
    out = capsys.readouterr().out
    assert f"set {orders} retention.ms: 1000 -> 604800000" in out
    assert f"add partitions to {orders}: now 8" in out

    state = run_sync(kafka_admin.describe_topics(kafka_bootstrap, [orders]))[orders]
    assert state.partitions == 8
    assert state.configs["retention.ms"] == "604800000"
    assert state.configs["max.message.bytes"] == "2000000"  # not ours: left alone

    assert _apply(kafka_bootstrap, names, "--partitions-override", "8") == 0
    assert "topics up to date" in capsys.readouterr().out


def test_apply_reports_drift_it_cannot_fix(
    kafka_bootstrap: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _apply(kafka_bootstrap, names) == 0
    capsys.readouterr()
    assert _apply(kafka_bootstrap, names, "--partitions-override", "2") == 1
    out = capsys.readouterr().out
    assert f"drift: {names['orders']} has 6 partitions, the file wants 2" in out
    assert "drift: " + names["decisions.dlq"] not in out  # 1 -> 2 is growth
    assert f"add partitions to {names['decisions.dlq']}: now 2" in out

    assert _apply(kafka_bootstrap, names, "--replication-factor", "3", "--dry-run") == 1
    out = capsys.readouterr().out
    assert f"drift: {names['incidents']} has replication factor 1, the file wants 3" in out

    state = run_sync(kafka_admin.describe_topics(kafka_bootstrap, [names["orders"]]))
    assert state[names["orders"]].partitions == 6  # drift is reported, never "fixed"


def test_dry_run_changes_nothing(
    kafka_bootstrap: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _apply(kafka_bootstrap, names, "--dry-run") == 0
    assert f"would create {names['orders']}" in capsys.readouterr().out
    assert run_sync(kafka_admin.describe_topics(kafka_bootstrap, names.values())) == {}


def test_describe_shows_missing_and_present(
    kafka_bootstrap: str, names: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--bootstrap-servers", kafka_bootstrap, *_topic_flags(names)]
    assert cli_main(["topics", "describe", *flags]) == 0
    assert f"{names['orders']}: missing" in capsys.readouterr().out
    assert _apply(kafka_bootstrap, names) == 0
    capsys.readouterr()
    assert cli_main(["topics", "describe", *flags]) == 0
    out = capsys.readouterr().out
    assert f"{names['orders']}: 6 partitions, rf 1" in out
    assert "retention.ms = 604800000" in out


def test_unreachable_cluster_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    from streamrules.localkafka import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    assert cli_main(["topics", "describe", "--bootstrap-servers", bootstrap]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Kafka at {bootstrap}" in err
    assert len(err.strip().splitlines()) == 1


async def test_topic_fixture_gives_private_ready_topics(
    kafka_bootstrap: str, kafka_topics: object
) -> None:
    from aiokafka import AIOKafkaProducer

    make = kafka_topics
    assert callable(make)
    created = make("orders", "decisions", partitions=3)
    assert set(created) == {"orders", "decisions"}
    state = await kafka_admin.describe_topics(kafka_bootstrap, created.values())
    assert {s.partitions for s in state.values()} == {3}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:  # leaders are elected before the fixture returns: the first send succeeds
        meta = await producer.send_and_wait(created["orders"], b"x", partition=2)
    finally:
        await producer.stop()
    assert meta.partition == 2


def test_contract_topics_fixture_matches_the_file(
    kafka_bootstrap: str, contract_topics: dict[str, str]
) -> None:
    wanted = load_topics().renamed(contract_topics)
    state = run_sync(kafka_admin.describe_topics(kafka_bootstrap, wanted.names))
    # Everything as the file says, but retention (kept forever for tests' fixed event times).
    changes = plan(wanted.topics, state)
    assert not changes.create and not changes.add_partitions and not changes.drift
    assert {key for diff in changes.config_changes.values() for key in diff} == {"retention.ms"}


async def test_input_topics_accept_event_times_ahead_of_the_broker_clock(
    kafka_bootstrap: str, contract_topics: dict[str, str], kafka_topics: object
) -> None:
    """Records are stamped with their event time; a simulated stream may be days ahead of
    the broker's clock, which Kafka 4 rejects by default (message.timestamp.after.max.ms)."""
    import time

    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    assert callable(kafka_topics)
    # Kafka's default: at most 1 hour ahead.
    plain = kafka_topics("plain", configs={"message.timestamp.after.max.ms": "3600000"})["plain"]
    ahead_ms = int(time.time() * 1000) + 2 * 24 * 3600 * 1000  # the broker's clock, not ours
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(contract_topics["orders"], b"{}", timestamp_ms=ahead_ms)
        assert meta.timestamp == ahead_ms
        with pytest.raises(KafkaError):
            await producer.send_and_wait(plain, b"{}", timestamp_ms=ahead_ms)
    finally:
        await producer.stop()
