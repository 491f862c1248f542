"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine): check their
wiring instead: versions, dependencies, settings, ports and topics against the sources
they must agree with (tools/kafka/pom.xml, topics/topics.toml, streamrules.config)."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamrules.config import env_name, setting_names
from streamrules.localkafka import BrokerConfig, LocalKafka
from streamrules.topics import load_topics

ROOT = Path(__file__).resolve().parents[2]
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def pom_kafka_version() -> str:
    root = ET.parse(ROOT / "tools" / "kafka" / "pom.xml").getroot()
    version = root.find("m:properties/m:kafka.version", POM_NS)
    assert version is not None and version.text
    return version.text.strip()


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so that it can be checked"
    return {str(k): str(v) for k, v in env.items()}


def test_kafka_image_is_the_pom_release(services: dict[str, Any]) -> None:
    image = services["kafka"]["image"]
    name, _, tag = image.partition(":")
    assert name == "apache/kafka"
    assert tag == pom_kafka_version()


def test_every_org_apache_kafka_artifact_has_one_version() -> None:
    root = ET.parse(ROOT / "tools" / "kafka" / "pom.xml").getroot()
    versions = {
        dep.findtext("m:version", namespaces=POM_NS)
        for dep in root.iterfind(".//m:dependency", POM_NS)
        if dep.findtext("m:groupId", namespaces=POM_NS) == "org.apache.kafka"
    }
    assert versions == {"${kafka.version}"}


def test_kafka_is_a_single_kraft_node_like_the_local_broker(services: dict[str, Any]) -> None:
    env = env_of(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"])
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        assert env[key] == "1", key
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # The same development settings as the local broker.
    local = LocalKafka(BrokerConfig()).server_properties()
    for key in ("group.initial.rebalance.delay.ms", "log.retention.check.interval.ms"):
        assert env["KAFKA_" + key.replace(".", "_").upper()] == local[key], key
    test = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "kafka-broker-api-versions.sh" in test


def listeners(env: dict[str, str], key: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in env[key].split(","):
        name, _, rest = item.partition("://")
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_ports_and_listeners(services: dict[str, Any]) -> None:
    env = env_of(services["kafka"])
    advertised = listeners(env, "KAFKA_ADVERTISED_LISTENERS")
    bound = listeners(env, "KAFKA_LISTENERS")
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(bound) == set(protocols)
    assert set(advertised) <= set(bound)
    # The host reaches the broker on localhost:9092, as it would the local broker.
    assert advertised["EXTERNAL"] == ("localhost", 9092)
    assert "9092:9092" in services["kafka"]["ports"]
    # Containers use the internal listener, which must be advertised under the service name.
    internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    for name in ("topics", "processor", "producer", "tail"):
        bootstrap = env_of(services[name])["STREAMRULES_BOOTSTRAP_SERVERS"]
        assert bootstrap == f"{internal[0]}:{internal[1]}", name
        assert internal[0] == "kafka"
    metrics = env_of(services["processor"])["STREAMRULES_METRICS_PORT"]
    assert f"{metrics}:{metrics}" in services["processor"]["ports"]


def test_startup_order(services: dict[str, Any]) -> None:
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("processor", "producer"):
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"
    assert services["processor"]["command"] == ["run"]
    assert services["processor"]["restart"] == "unless-stopped"
    assert "streamrules produce" in " ".join(services["producer"]["command"])
    assert "streamrules.generate" in " ".join(services["producer"]["command"])


def test_streamrules_images_are_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    builders = [n for n, s in services.items() if "build" in s]
    assert builders == ["topics"]  # built once, reused by the others
    image = services["topics"]["image"]
    for name in ("processor", "producer", "tail"):
        assert services[name]["image"] == image


def test_settings_are_real_streamrules_settings(services: dict[str, Any]) -> None:
    known = {env_name(name) for name in setting_names()}
    for name, service in services.items():
        for key in env_of(service):
            if key.startswith("STREAMRULES_"):
                assert key in known, f"{name}: {key} is not a streamrules setting"


def test_topics_are_those_of_topics_toml(services: dict[str, Any]) -> None:
    wanted = set(load_topics().names)
    for name in ("topics", "processor", "producer", "tail"):
        env = env_of(services[name])
        configured = {
            env["STREAMRULES_ORDERS_TOPIC"],
            env["STREAMRULES_INCIDENTS_TOPIC"],
            env["STREAMRULES_DECISIONS_TOPIC"],
            env["STREAMRULES_DLQ_TOPIC"],
        }
        assert configured == wanted, name


def test_dockerfile_matches_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM python:(\d+\.\d+)", text, re.M)
    assert base is not None
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, base.group(1).split("."))) >= tuple(map(int, minimum.split(".")))
    assert "COPY topics ./topics" in text  # topics.toml and schemas next to the package
    assert "pip install -e" in text  # editable: /app/topics stays where the code looks
    assert 'ENTRYPOINT ["streamrules"]' in text
    for copied in re.findall(r"^COPY (.+) \./", text, re.M):
        for path in copied.split():
            if path != "README.md":  # assembled from docs/readme/ before a release build
                assert (ROOT / path).exists(), path
