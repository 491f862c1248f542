"""docker-compose.yml, the Dockerfile and deploy/ kept consistent without a Docker engine
(`make compose-test`, tests/compose/, runs the stack): versions, dependencies, settings,
ports, topics and the Prometheus and Grafana files against the sources they must agree
with (tools/kafka/pom.xml, topics/topics.toml, streamrules.config, pyproject.toml)."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from streamrules.config import env_name, setting_names
from streamrules.generate import LATEST_THURSDAY
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


def defaults(text: str) -> str:
    """``text`` with each ``${VAR:-default}`` as docker compose expands it, VAR unset."""
    assert not re.search(r"\$\{\w+\}", text), f"a variable without a default: {text}"
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so that it can be checked"
    return {str(k): defaults(str(v)) for k, v in env.items()}


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """``{container port: (host address, host port)}`` of a service, defaults expanded."""
    out = {}
    for item in service.get("ports", []):
        address, host, container = defaults(item).split(":")
        out[int(container)] = (address, int(host))
    return out


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
    # The internal listener: inside the container, the external one's advertised port (the
    # host's) need not be listening.
    assert "--bootstrap-server kafka:29092" in test


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
    # The host reaches the broker on localhost:9092, as it would the local broker; the
    # advertised port follows the published one when STACK_KAFKA_PORT moves it.
    assert advertised["EXTERNAL"] == ("localhost", 9092)
    assert published(services["kafka"]) == {bound["EXTERNAL"][1]: ("127.0.0.1", 9092)}
    raw = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "EXTERNAL://localhost:${STACK_KAFKA_PORT:-9092}" in raw
    assert services["kafka"]["ports"] == ["127.0.0.1:${STACK_KAFKA_PORT:-9092}:9092"]
    # Containers use the internal listener, which must be advertised under the service name.
    internal = advertised[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    for name in ("topics", "processor", "producer", "tail"):
        bootstrap = env_of(services[name])["STREAMRULES_BOOTSTRAP_SERVERS"]
        assert bootstrap == f"{internal[0]}:{internal[1]}", name
        assert internal[0] == "kafka"
    metrics = int(env_of(services["processor"])["STREAMRULES_METRICS_PORT"])
    assert published(services["processor"]) == {metrics: ("127.0.0.1", metrics)}
    # Everything published listens on the loopback only.
    for name, service in services.items():
        for address, _ in published(service).values():
            assert address == "127.0.0.1", name


def test_startup_order(services: dict[str, Any]) -> None:
    assert services["topics"]["command"] == ["topics", "apply"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("processor", "producer"):
        deps = services[name]["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["topics"]["condition"] == "service_completed_successfully"
    # The processor starts on the whole demo stream: its decisions are then exactly those
    # of `streamrules replay` (what `make compose-test` checks).
    assert services["processor"]["depends_on"]["producer"] == {
        "condition": "service_completed_successfully"
    }
    assert services["processor"]["command"] == ["run"]
    assert services["processor"]["restart"] == "unless-stopped"


def test_the_producer_exits_0_and_its_stream_stays_within_retention(
    services: dict[str, Any],
) -> None:
    command = " ".join(services["producer"]["command"])
    generate, _, produce = command.partition("|")
    assert generate.split()[:3] == ["python", "-m", "streamrules.generate"]
    # Its malformed lines go to the dead-letter topic, for which produce exits 0.
    assert "--malformed-ratio" in generate
    assert produce.split() == ["streamrules", "produce", "--dead-letters", "-"]
    # A start relative to today (a fixed date falls out of the 7-day retention).
    start = re.search(r"--start (\S+)", generate)
    assert start is not None
    assert defaults(start.group(1)) == LATEST_THURSDAY
    # latest-thursday ends the stream by now, less than 7 days ago (test_demo_start): the
    # input topics must keep a log segment whose newest record is that old.
    for topic in ("orders", "incidents"):
        retention_days = int(load_topics().get(topic).configs["retention.ms"]) / 86_400_000
        assert retention_days >= 7, topic


def test_streamrules_images_are_built_from_the_dockerfile(services: dict[str, Any]) -> None:
    # Every service of the image builds it: `docker compose run --rm tail` alone must not
    # try to pull streamrules:dev.
    users = {n for n, s in services.items() if s["image"].startswith("streamrules:")}
    assert users == {"topics", "producer", "processor", "tail"}
    for name in users:
        assert services[name]["build"] == "."
        assert services[name]["image"] == "streamrules:dev"


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
    assert re.search(r"pip install .*-e \.", text)  # editable: /app/topics stays in place
    assert 'ENTRYPOINT ["streamrules"]' in text
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in copied.split():
            if "[" not in path:  # a glob: .compose/wheel[s] may match nothing
                assert (ROOT / path).exists(), path
    # Dependencies first: pip installs them before any code is copied, so that a code
    # change reuses that layer.
    lines = text.splitlines()
    first_code = min(i for i, line in enumerate(lines) if line.startswith("COPY streamrules"))
    deps = next(i for i, line in enumerate(lines) if "-r /tmp/deps/requirements.txt" in line)
    assert deps < first_code
    assert not any("streamrules" in line for line in lines[:deps] if line.startswith("COPY"))


def test_the_image_installs_what_pyproject_asks() -> None:
    spec = importlib.util.spec_from_file_location(
        "requirements", ROOT / "tools" / "compose" / "requirements.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = module.requirements(pyproject)
    assert set(pyproject["project"]["dependencies"]) <= set(wanted)
    assert set(pyproject["project"]["optional-dependencies"]["prometheus"]) <= set(wanted)
    assert set(pyproject["build-system"]["requires"]) <= set(wanted)
    # The build context holds what the Dockerfile copies, and the host-built wheels.
    ignore = (ROOT / ".dockerignore").read_text().split()
    for kept in ("!pyproject.toml", "!streamrules/", "!topics/", "!.compose/wheels/"):
        assert kept in ignore


def test_prometheus_scrapes_the_processor_and_loads_the_alerts(services: dict[str, Any]) -> None:
    service = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in service["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    # The stand-in is Debian's prometheus package: the tag must be a release Debian has.
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", service["image"])
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    metrics = env_of(services["processor"])["STREAMRULES_METRICS_PORT"]
    targets = [t for c in jobs["streamrules"]["static_configs"] for t in c["targets"]]
    assert targets == [f"processor:{metrics}"]


def test_grafana_is_provisioned_from_deploy(services: dict[str, Any]) -> None:
    """Grafana cannot run here (no Debian package, no registry): its files, statically."""
    service = services["grafana"]
    mounts = dict(v.removesuffix(":ro").split(":") for v in service["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"  # the prometheus service, its port
    assert "prometheus" in services and source["uid"] == "prometheus"
    providers = yaml.safe_load((provisioning / "dashboards" / "streamrules.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    # The provider's folder is where docker-compose.yml mounts deploy/grafana/dashboards.
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    for dashboard in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"):
        assert json.loads(dashboard.read_text())["title"], dashboard


def test_the_readme_docker_section_describes_the_stack(services: dict[str, Any]) -> None:
    text = (ROOT / "docs" / "readme" / "operations-kafka.md").read_text()
    section = text.split("### Docker\n", 1)[1].split("\n### ", 1)[0]
    for name, service in services.items():
        if name != "tail":  # a tool, shown as `docker compose run --rm tail`
            assert f"`{name}`" in section, name
        if not service["image"].startswith("streamrules:"):
            assert f"`{service['image']}`" in section, service["image"]
    assert "`python:3.11-slim`" in section  # the Dockerfile's base has a stand-in too
    assert "docker compose up --build" in section
    assert "make compose-test" in section
    quickstart = (ROOT / "docs" / "readme" / "00-quickstart.md").read_text()
    assert "docker compose up --build" in quickstart  # the same command in both
    assert "docker compose up`" not in quickstart
