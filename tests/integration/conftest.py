"""Fixtures for tests against a real Kafka broker.

``kafka_bootstrap`` (session): the bootstrap servers of a running broker: the one given by
``--kafka-bootstrap`` / ``STREAMRULES_TEST_BOOTSTRAP``, else a private broker started with
``streamrules.localkafka`` on free ports in a temporary data folder (stopped at the end of
the session). When no broker can be had, the tests fail under ``CI=true`` and are skipped,
with the reason, otherwise.

``kafka_topics`` (per test): a factory creating uniquely named topics, deleted after the
test, so that tests never see each other's records. ``contract_topics``: the four topics
of topics/topics.toml under unique names (logical name -> real name).

Every test in this folder is marked ``integration``. After each test, any `run` process a
test started (``test_service_live.Service``) and left running is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from streamrules.errors import StreamRulesError
from streamrules.localkafka import BrokerConfig, LocalKafka, run_sync, with_free_ports
from streamrules.topics import TopicSpec, load_topics
from streamrules.transport import kafka_admin
from tests.conftest import configured_bootstrap

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _no_service_left() -> Iterator[None]:
    yield
    from tests.integration.test_service_live import kill_leftovers

    kill_leftovers()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _no_broker(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true and no Kafka broker: {reason}", pytrace=False)
    pytest.skip(f"no Kafka broker: {reason}")


@pytest.fixture(scope="session")
def kafka_bootstrap(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    given = configured_bootstrap(request.config)
    if given:
        try:
            asyncio.run(kafka_admin.wait_for_broker(given, timeout_s=30))
        except StreamRulesError as exc:
            _no_broker(f"{given} does not answer: {exc}")
        yield given
        return
    config = with_free_ports(BrokerConfig(data_dir=tmp_path_factory.mktemp("kafka")))
    broker = LocalKafka(config)
    try:
        broker.start()
    except StreamRulesError as exc:
        broker.stop()
        _no_broker(f"could not start a private broker: {exc}")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


def unique_name(request: pytest.FixtureRequest, logical: str) -> str:
    test = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"t-{test}-{uuid.uuid4().hex[:8]}-{logical}"


TopicFactory = Callable[..., dict[str, str]]


# The tests produce streams with fixed event times (deterministic, comparable with replay)
# and Kafka deletes records by their timestamps: once those times are older than a topic's
# retention, the broker's retention check could delete a test's records under it.
KEEP_FOREVER = {"retention.ms": "-1"}


@pytest.fixture
def kafka_topics(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """``kafka_topics("orders", "decisions", partitions=3)`` -> ``{"orders": "t-...-orders", ...}``.

    The topics exist (every partition with a leader) when the call returns, and are
    deleted after the test. Callable from sync and async tests. Their configs are the
    ``[defaults.config]`` of topics/topics.toml (so records stamped with event times
    ahead of the broker's clock are accepted, as on the real topics), then ``configs``.
    """
    created: list[str] = []
    defaults = {**load_topics().default_configs, **KEEP_FOREVER}

    def make(
        *logical: str, partitions: int = 1, configs: dict[str, str] | None = None
    ) -> dict[str, str]:
        names = {name: unique_name(request, name) for name in logical}
        wanted = {**defaults, **(configs or {})}
        specs = [TopicSpec(real, partitions, 1, wanted) for real in names.values()]
        _run(kafka_admin.create_topics(kafka_bootstrap, specs))
        created.extend(names.values())
        return names

    yield make
    if created:
        _run(kafka_admin.delete_topics(kafka_bootstrap, created))


@pytest.fixture
def contract_topics(
    kafka_bootstrap: str, request: pytest.FixtureRequest
) -> Iterator[dict[str, str]]:
    """orders, incidents, decisions, decisions.dlq as topics.toml defines them (partitions
    and configs), under unique names: ``{"orders": "t-...-orders", ...}``."""
    names = {name: unique_name(request, name) for name in load_topics().names}
    specs = [
        dataclasses.replace(spec, configs={**spec.configs, **KEEP_FOREVER})
        for spec in load_topics().renamed(names).topics
    ]
    _run(kafka_admin.create_topics(kafka_bootstrap, specs))
    yield names
    _run(kafka_admin.delete_topics(kafka_bootstrap, list(names.values())))


def _run(coro: Coroutine[Any, Any, object]) -> None:
    """Run admin coroutines from sync fixtures, also while a test's event loop runs."""
    run_sync(coro)
