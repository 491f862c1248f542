"""The local broker manager against real brokers: lifecycle, idempotence, failures, and
that the pinned Kafka release works with aiokafka (produce, groups, transactions)."""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamrules.errors import ConfigError, TransportError
from streamrules.localkafka import (
    BrokerConfig,
    LocalKafka,
    kafka_version,
    new_cluster_id,
    parse_java_version,
    run_sync,
    with_free_ports,
)
from streamrules.topics import TopicSpec
from streamrules.transport import kafka_admin
from tests.integration.conftest import TopicFactory

pytestmark = pytest.mark.integration

# `streamrules broker ...` through the real entry point, with only the broker command
# registered so that this test does not depend on every other command importing cleanly.
ONLY_BROKER_CLI = (
    "import sys, streamrules.cli as c; c.COMMANDS = ('broker',); sys.exit(c.main(sys.argv[1:]))"
)


# -- the pinned release speaks aiokafka's protocol ------------------------------------------


async def test_produce_consume_round_trip(kafka_bootstrap: str, kafka_topics: TopicFactory) -> None:
    topic = kafka_topics("orders", partitions=3)["orders"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(30):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=f"k{i % 5}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen: list[bytes] = []
        while len(seen) < 30:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no records within 5 s"
            seen += [r.value for records in batch.values() for r in records]
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(seen) == sorted(f"v{i}".encode() for i in range(30))


async def test_transactions_and_read_committed(
    kafka_bootstrap: str, kafka_topics: TopicFactory
) -> None:
    """Consume-transform-produce as the exactly-once mode does it: outputs and input offsets
    in one transaction; an aborted transaction is invisible to read_committed readers."""
    names = kafka_topics("in", "out", partitions=2)
    src, dst, group = names["in"], names["out"], f"g-{names['in']}"
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await plain.start()
    for i in range(10):
        await plain.send_and_wait(src, f"{i}".encode(), partition=i % 2)
    await plain.stop()

    txn = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{src}")
    consumer = AIOKafkaConsumer(
        src,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await txn.start()
    await consumer.start()
    try:
        async with txn.transaction():
            await txn.send(dst, b"committed")
        await txn.begin_transaction()
        await txn.send(dst, b"never-visible")
        await txn.abort_transaction()
        done = 0
        while done < 10:
            batch = await consumer.getmany(timeout_ms=5000)
            assert batch, "no input within 5 s"
            async with txn.transaction():
                offsets = {}
                for tp, records in batch.items():
                    for record in records:
                        await txn.send(dst, record.value + b"!")
                        done += 1
                    offsets[tp] = records[-1].offset + 1
                await txn.send_offsets_to_transaction(offsets, group)
    finally:
        await consumer.stop()
        await txn.stop()

    reader = AIOKafkaConsumer(
        dst,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await reader.start()
    try:
        out: list[bytes] = []
        while len(out) < 11:
            batch = await reader.getmany(timeout_ms=5000)
            assert batch, f"only {len(out)} committed records visible"
            out += [r.value for records in batch.values() for r in records]
    finally:
        await reader.stop()
    assert b"never-visible" not in out
    assert sorted(out) == sorted([b"committed"] + [f"{i}!".encode() for i in range(10)])

    checker = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group)
    await checker.start()
    try:
        committed = [await checker.committed(TopicPartition(src, p)) for p in (0, 1)]
    finally:
        await checker.stop()
    assert committed == [5, 5]


# -- lifecycle of a private broker ----------------------------------------------------------


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    broker = LocalKafka(with_free_ports(BrokerConfig(data_dir=tmp_path / "kafka")))
    try:
        yield broker
    finally:
        broker.stop()


def test_start_is_idempotent_and_data_survives_a_restart(private_broker: LocalKafka) -> None:
    broker = private_broker
    assert not broker.status().running

    first = broker.start()
    assert not first.already_running and first.formatted
    assert "cluster.id=" in (broker.kafka_log_dir / "meta.properties").read_text()
    status = broker.status()
    assert status.running and status.pid == first.pid
    assert status.bootstrap_servers == broker.bootstrap_servers

    again = broker.start()
    assert again.already_running and again.pid == first.pid
    # The SLF4J -> log4j2 binding works: without it Kafka 4 runs silently.
    log = broker.log_file.read_text()
    assert "Kafka Server started" in log and f"Kafka version: {kafka_version()}" in log

    spec = TopicSpec("kept-across-restarts", 2, 1, {"retention.ms": "3600000"})
    run_sync(kafka_admin.create_topics(broker.bootstrap_servers, [spec]))

    assert broker.stop() is True
    assert not broker.status().running
    assert not broker.pid_file.exists()
    assert broker.stop() is False  # nothing left to stop

    # A crash leaves a pid file behind whose pid is gone (or reused by something else).
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    broker.pid_file.write_text(f"{dead.pid}\n")
    status = broker.status()
    assert not status.running and status.stale_pid_file

    restarted = broker.start()
    assert not restarted.already_running
    assert not restarted.formatted and not restarted.resolved_classpath
    assert broker.pid_file.read_text().strip() == str(restarted.pid)
    state = run_sync(kafka_admin.describe_topics(broker.bootstrap_servers, [spec.name]))
    assert state[spec.name].partitions == 2
    assert state[spec.name].configs["retention.ms"] == "3600000"


def test_a_bad_setting_is_reported_with_the_log(private_broker: LocalKafka) -> None:
    bad_config = replace(private_broker.config, extra_properties={"num.network.threads": "0"})
    # A new folder: formatting validates the configuration first.
    with pytest.raises(TransportError, match="formatting") as info:
        LocalKafka(bad_config).start()
    assert "num.network.threads" in str(info.value)
    # An existing folder: the broker itself exits, and the error quotes its log.
    assert private_broker.prepare() == (False, True)
    bad = LocalKafka(bad_config)
    with pytest.raises(TransportError, match="exited during start-up") as info:
        bad.start()
    assert "num.network.threads" in str(info.value)
    assert not bad.status().running
    assert not bad.pid_file.exists()


def test_port_in_use_is_a_clear_error(private_broker: LocalKafka) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", private_broker.config.port))
        blocker.listen()
        with pytest.raises(TransportError, match="already in use"):
            private_broker.start()


def test_cli_start_status_stop(tmp_path: Path) -> None:
    config = with_free_ports(BrokerConfig(data_dir=tmp_path / "cli"))
    flags = [
        "--data-dir",
        str(config.data_dir),
        "--port",
        str(config.port),
        "--controller-port",
        str(config.controller_port),
    ]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", ONLY_BROKER_CLI, "broker", *args],
            capture_output=True,
            text=True,
            check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("STREAMRULES_")},
        )

    try:
        started = cli("start", *flags)
        assert started.returncode == 0, started.stderr
        assert f"Kafka {kafka_version()} started" in started.stdout
        again = cli("start", *flags)
        assert again.returncode == 0 and "already running" in again.stdout
        status = cli("status", "--data-dir", str(config.data_dir))
        assert status.returncode == 0 and f"127.0.0.1:{config.port}" in status.stdout
        logs = cli("logs", "--data-dir", str(config.data_dir), "-n", "5")
        assert logs.returncode == 0 and logs.stdout.strip()
    finally:
        stopped = cli("stop", "--data-dir", str(config.data_dir))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = cli("status", "--data-dir", str(config.data_dir))
    assert after.returncode == 3 and "not running" in after.stdout


# -- prerequisites (no broker needed) -------------------------------------------------------


def test_missing_java_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConfigError, match="Java 17"):
        LocalKafka(BrokerConfig(data_dir=tmp_path / "k")).java()


def test_old_java_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="Java 11"):
        LocalKafka(BrokerConfig(data_dir=tmp_path / "k")).java()


def test_missing_maven_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    broker = LocalKafka(BrokerConfig(data_dir=tmp_path / "k", cache_dir=tmp_path / "cache"))
    with pytest.raises(ConfigError, match="Maven"):
        broker.resolve_classpath()


def test_cli_reports_missing_java_in_one_line(tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", ONLY_BROKER_CLI, "broker", "start", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Java 17" in proc.stderr


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ],
)
def test_parse_java_version(output: str, major: int) -> None:
    assert parse_java_version(output) == major


def test_env_and_flags_configure_the_broker(tmp_path: Path) -> None:
    env = {
        "STREAMRULES_BROKER_PORT": "29092",
        "STREAMRULES_BROKER_CONTROLLER_PORT": "29093",
        "STREAMRULES_BROKER_DATA_DIR": str(tmp_path / "env"),
    }
    from_env = BrokerConfig.from_env(env)
    assert (from_env.port, from_env.controller_port) == (29092, 29093)
    assert from_env.data_dir == (tmp_path / "env").resolve()
    flagged = BrokerConfig.from_env(env, port=39092, data_dir=None)
    assert flagged.port == 39092 and flagged.data_dir == (tmp_path / "env").resolve()
    with pytest.raises(ConfigError, match="STREAMRULES_BROKER_PORT"):
        BrokerConfig.from_env({"STREAMRULES_BROKER_PORT": "x"})
    with pytest.raises(ConfigError, match="both"):
        BrokerConfig(port=9092, controller_port=9092)


def test_server_properties_are_those_of_a_single_node_dev_broker(tmp_path: Path) -> None:
    config = BrokerConfig(port=19192, controller_port=19193, data_dir=tmp_path / "k")
    props = LocalKafka(config).server_properties()
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19193"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19192"
    assert props["log.dirs"] == str((tmp_path / "k" / "data").resolve())
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    extra = BrokerConfig(data_dir=tmp_path / "k", extra_properties={"num.partitions": "4"})
    assert LocalKafka(extra).server_properties()["num.partitions"] == "4"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for text in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", text) and not text.startswith("-")
        raw = base64.urlsafe_b64decode(text + "==")
        assert len(raw) == 16 and raw[6] >> 4 == 4  # a version-4 UUID, as Kafka makes them
