"""The secured broker of the security tests (no tests here): a session-wide SASL_SSL broker
made by ``streamrules.localkafka`` with ``secure=True``, and helpers to act on it as its
administrator (topics, ACLs, offsets, reading topics back)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from streamrules.acls import Acl
from streamrules.config import Settings, load_settings
from streamrules.errors import StreamRulesError
from streamrules.localkafka import BrokerConfig, LocalKafka, with_free_ports
from streamrules.topics import TopicSpec, load_topics
from streamrules.transport import kafka_admin
from streamrules.transport.kafka import ConsumedRecord, follow

# admin is the super user; app runs the service, feeder produces, reader tails.
USERS = ("admin", "app", "feeder", "reader")
LOGICAL = ("orders", "incidents", "decisions", "decisions.dlq")


@dataclass(frozen=True)
class SecureBroker:
    broker: LocalKafka

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def config(self, user: str) -> Path:
        return self.broker.client_config(user)

    def password(self, user: str) -> str:
        return self.broker.credentials(user).password

    def passwords(self) -> list[str]:
        return [self.password(u) for u in USERS]

    def settings(self, user: str = "admin", **overrides: Any) -> Settings:
        return load_settings({"config": str(self.config(user))}, environ={}, **overrides)

    @property
    def admin(self) -> dict[str, Any]:
        return self.broker.client_options("admin")

    def create_topics(self, names: Mapping[str, str], partitions: int = 1) -> None:
        # The topics.toml configs (records stamped with event times are accepted), kept
        # forever: the broker's retention check must not delete a test's records.
        configs = {**load_topics().default_configs, "retention.ms": "-1"}
        specs = [TopicSpec(n, partitions, 1, configs) for n in names.values()]
        asyncio.run(kafka_admin.create_topics(self.bootstrap, specs, **self.admin))

    def create_acls(self, acls: Sequence[Acl]) -> None:
        asyncio.run(kafka_admin.create_acls(self.bootstrap, acls, **self.admin))

    def delete_acls(self, acls: Sequence[Acl]) -> None:
        asyncio.run(kafka_admin.delete_acls(self.bootstrap, acls, **self.admin))

    def acls_of(self, principal: str) -> list[Acl]:
        return asyncio.run(kafka_admin.describe_acls(self.bootstrap, principal, **self.admin))

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        async def go() -> dict[tuple[str, int], int]:
            async with kafka_admin.admin_client(self.bootstrap, **self.admin) as admin:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        found = await admin.list_consumer_group_offsets(group)
                        break
                    except KafkaError as exc:
                        # The first group request of a broker creates __consumer_offsets:
                        # its coordinator is "not available" until then.
                        if not exc.retriable or time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.2)
            return {(tp.topic, tp.partition): int(m.offset) for tp, m in found.items()}

        return asyncio.run(go())

    def read(self, topic: str, idle_s: float = 3.0) -> list[ConsumedRecord]:
        """Every committed record of ``topic`` (read as admin), each partition in order."""

        async def go() -> list[ConsumedRecord]:
            s = self.settings("admin", client_id="test-reader")
            return [r async for r in follow(s, topic, from_beginning=True, idle_timeout_s=idle_s)]

        return asyncio.run(go())


_TOPIC_FLAGS = {
    "orders": "--orders-topic",
    "incidents": "--incidents-topic",
    "decisions": "--decisions-topic",
    "decisions.dlq": "--dlq-topic",
}
# The topics each command takes a flag for (a command offers only the settings it uses).
_COMMAND_TOPICS = {
    "produce": ("orders", "incidents", "decisions.dlq"),
    "tail": ("decisions",),
}


def topic_flags(names: Mapping[str, str], command: str = "run") -> list[str]:
    """The topic flags of ``command`` for these (logical -> real) topic names."""
    flags: list[str] = []
    for logical in _COMMAND_TOPICS.get(command, tuple(_TOPIC_FLAGS)):
        flags += [_TOPIC_FLAGS[logical], names[logical]]
    return flags


def recent_start() -> datetime:
    """A start for generated streams a day ago, on the hour: well inside the topics'
    retention, never ahead of the wall clock (no `future_event` dead letters)."""
    return (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def start_secure_broker(data_dir: Path) -> Iterator[SecureBroker]:
    """A secured broker on free ports for the session; fails under CI=true if it cannot
    start, else skips with the reason."""
    broker = LocalKafka(with_free_ports(BrokerConfig(data_dir=data_dir, secure=True, users=USERS)))
    try:
        broker.start()
    except StreamRulesError as exc:
        broker.stop()
        if _in_ci():
            pytest.fail(f"CI=true and the secured broker did not start: {exc}", pytrace=False)
        pytest.skip(f"no secured broker: {exc}")
    try:
        yield SecureBroker(broker)
    finally:
        broker.stop()
