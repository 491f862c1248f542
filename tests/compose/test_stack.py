"""`make compose-test`: docker-compose.yml run for real, from the host.

The stack is brought up as the README says (`docker-compose up --build`, with the images
tools/compose/setup.sh made ready: real ones, or stand-ins where no registry answers), on
free loopback ports and its own network; the test then reads `decisions` and
`decisions.dlq` from the host and checks them against `streamrules replay` of the same
stream, asks Prometheus whether it scrapes the processor, and Grafana (where it could be
had) whether it lists the provisioned dashboards. `docker-compose down -v` ends it, also
on failure. Skipped unless STREAMRULES_TEST_COMPOSE=1 (the make target sets it).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from streamrules.generate import recent_start
from streamrules.localkafka import free_port
from streamrules.transport.kafka import ConsumedRecord
from tests.integration.test_service_support import (
    merged_lines,
    read_topic,
    replay,
    replay_dead_reasons,
)

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROJECT = "streamrules-compose-test"
LOG_FILE = ROOT / ".compose" / "stack.log"
# The services up by default; STREAMRULES_TEST_COMPOSE_SERVICES (from setup.sh) adds
# grafana where its image could be had.
DEFAULT_SERVICES = "kafka topics producer processor prometheus"
WAIT_S = 600.0  # for anything the stack does by itself; the machine may be loaded

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("STREAMRULES_TEST_COMPOSE") != "1",
        reason="run by `make compose-test` (needs a Docker engine and the images it prepares)",
    ),
    # The stack's start (an image build) and the processing of the whole demo stream are
    # fixture set-ups, which pytest-timeout counts in: more than the default 600 s, for a
    # loaded machine; the waits inside have their own limits.
    pytest.mark.timeout(1800),
]

_T = TypeVar("_T")


@dataclass(frozen=True)
class Stack:
    services: tuple[str, ...]
    env: dict[str, str]
    bootstrap: str
    metrics: str
    prometheus: str
    grafana: str
    start: str

    def decisions_counted(self, at_least: int) -> int | None:
        """The processor's streamrules_decisions_total, once it is ``at_least``."""
        try:
            with urllib.request.urlopen(f"{self.metrics}/metrics", timeout=10) as response:
                text = response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        total = sum(
            int(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "streamrules_decisions_total"
        )
        return total if total >= at_least else None

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return compose(self.env, *args, timeout=timeout)

    def container(self, service: str) -> dict[str, Any]:
        ids = self.compose("ps", "-q", service).stdout.split()
        assert len(ids) == 1, f"{service}: containers {ids}"
        done = subprocess.run(
            ["docker", "inspect", ids[0]], capture_output=True, text=True, check=True
        )
        info: dict[str, Any] = json.loads(done.stdout)[0]
        return info


def compose(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-p", PROJECT, "-f", str(COMPOSE_FILE), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(what: str, probe: Callable[[], _T | None], timeout: float = WAIT_S) -> _T:
    """``probe()``'s first value that is not None, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(2)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def try_json(url: str) -> Any:
    try:
        return get_json(url)
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    services = tuple(os.environ.get("STREAMRULES_TEST_COMPOSE_SERVICES", DEFAULT_SERVICES).split())
    # The producer's own start, fixed here so that the host generates the same stream.
    days = float(producer_argv("now")[producer_argv("now").index("--days") + 1])
    now = datetime.datetime.now(datetime.UTC)
    start = recent_start(now, days).strftime("%Y-%m-%dT%H:%M:%SZ")
    ports = {
        name: str(free_port())
        for name in ("KAFKA_PORT", "METRICS_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT")
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMRULES_")}
    env.update({f"STACK_{k}": v for k, v in ports.items()}, STACK_DEMO_START=start)
    compose(env, "down", "-v", "--remove-orphans", timeout=300)  # a killed run's leftovers
    try:
        up = compose(env, "up", "-d", "--build", *services, timeout=1200)
        assert up.returncode == 0, (
            f"docker-compose up failed:\n{up.stdout[-3000:]}{up.stderr[-3000:]}"
        )
        yield Stack(
            services,
            env,
            bootstrap=f"127.0.0.1:{ports['KAFKA_PORT']}",
            metrics=f"http://127.0.0.1:{ports['METRICS_PORT']}",
            prometheus=f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}",
            grafana=f"http://127.0.0.1:{ports['GRAFANA_PORT']}",
            start=start,
        )
    finally:
        logs = compose(env, "logs", "--no-color", "--timestamps", timeout=120)
        LOG_FILE.parent.mkdir(exist_ok=True)
        LOG_FILE.write_text(logs.stdout + logs.stderr)
        print(f"\nthe stack's logs: {LOG_FILE}", file=sys.stderr)
        down = compose(env, "down", "-v", "--remove-orphans", timeout=300)
        assert down.returncode == 0, down.stderr


def producer_argv(start: str) -> list[str]:
    """The producer service's generate command, with ``start`` for STACK_DEMO_START."""
    service = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["producer"]
    generate, _, produce = service["command"][0].partition("|")
    assert produce.split()[:2] == ["streamrules", "produce"]
    argv = shlex.split(generate.replace("${STACK_DEMO_START:-latest-thursday}", start))
    assert argv[:3] == ["python", "-m", "streamrules.generate"], argv
    return argv


def producer_stream(start: str) -> list[bytes]:
    """The stream the producer service sends: its generate command, run on the host."""
    argv = producer_argv(start)
    done = subprocess.run(
        [sys.executable, *argv[1:]], capture_output=True, check=True, cwd=ROOT, timeout=300
    )
    return [line for line in done.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Processed:
    stream: list[bytes]
    inputs: list[ConsumedRecord]
    decisions: list[ConsumedRecord]
    dead: list[ConsumedRecord]


@pytest.fixture(scope="module")
def processed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Processed:
    """The topics once the processor has gone through the producer's stream."""
    stream = producer_stream(stack.start)
    inputs = read_topic(stack.bootstrap, "orders") + read_topic(stack.bootstrap, "incidents")
    # Merged in the processor's order; the invalid lines (the producer dead-lettered them)
    # last: replay dead-letters them without an event time, as the producer did.
    sent = Counter(r.value for r in inputs)
    invalid = list((Counter(stream) - sent).elements())
    tmp = tmp_path_factory.mktemp("replay")
    expected = replay(tmp, merged_lines(inputs) + invalid)
    assert expected, "the demo stream should cause decisions"

    # The processor's own count first (reading the topic is much dearer), then the topic.
    wait_for(f"{len(expected)} decisions", lambda: stack.decisions_counted(len(expected)))

    def all_decisions() -> list[ConsumedRecord] | None:
        got = read_topic(stack.bootstrap, "decisions", idle_s=5)
        return got if len(got) >= len(expected) else None

    decisions = wait_for("the decisions on their topic", all_decisions, timeout=120)
    dead = read_topic(stack.bootstrap, "decisions.dlq", idle_s=2)
    check_against_replay(decisions, expected)
    reasons = Counter(r.header("reason").decode() for r in dead)  # type: ignore[union-attr]
    assert reasons == Counter(replay_dead_reasons(tmp))
    return Processed(stream, inputs, decisions, dead)


def check_against_replay(
    published: list[ConsumedRecord], expected: list[dict[str, object]]
) -> None:
    """The checks of the partitioned service test: same decisions, keyed, in firing order."""
    got = {orjson.loads(r.value)["decision_id"]: r for r in published}
    assert len(got) == len(published), "no decision twice"
    want = {d["decision_id"]: d for d in expected}
    assert set(got) == set(want)
    for decision_id, record in got.items():
        assert orjson.loads(record.value) == want[decision_id]
        assert record.key == str(want[decision_id]["key"]).encode()
    order = [d["decision_id"] for d in expected]
    per_partition: dict[int, list[object]] = defaultdict(list)
    for r in published:
        per_partition[r.partition].append(orjson.loads(r.value)["decision_id"])
    for ids in per_partition.values():
        assert ids == [i for i in order if i in set(ids)], "firing order within a partition"


def test_one_shot_services_succeeded_and_the_others_run(stack: Stack) -> None:
    for service in ("topics", "producer"):
        state = stack.container(service)["State"]
        assert (state["Status"], state["ExitCode"]) == ("exited", 0), service
    for service in ("kafka", "processor", "prometheus"):
        info = stack.container(service)
        assert info["State"]["Status"] == "running", service
        assert info["RestartCount"] == 0, service
    assert stack.container("kafka")["State"]["Health"]["Status"] == "healthy"


def test_decisions_and_dead_letters_are_those_of_replay(processed: Processed) -> None:
    # The producer sent the stream the compose file describes: every valid line to its
    # input topic, every invalid one (there are some, deliberately) to the dead-letter
    # topic with source.partition -1.
    by_producer = [r for r in processed.dead if r.header("source.partition") == b"-1"]
    assert by_producer, "the demo stream has malformed lines"
    assert Counter(r.value for r in processed.inputs + by_producer) == Counter(processed.stream)
    # Three days of the demo stream keep both packs busy.
    rules = Counter(r.header("rule") for r in processed.decisions)
    assert rules[b"discount"] > 1000
    assert rules[b"incident_escalation"] > 0 and rules[b"payments_hold"] > 0


def test_prometheus_scrapes_the_processor(stack: Stack, processed: Processed) -> None:
    def processor_up() -> dict[str, Any] | None:
        targets = try_json(f"{stack.prometheus}/api/v1/targets")
        for t in (targets or {}).get("data", {}).get("activeTargets", []):
            if t["labels"]["job"] == "streamrules" and t["health"] == "up":
                return dict(t)
        return None

    target = wait_for("Prometheus to scrape the processor", processor_up)
    assert target["scrapeUrl"] == "http://processor:9108/metrics"

    # What it scraped is the processor's count of what the test read.
    query = urllib.parse.quote("sum(streamrules_decisions_total)")

    def decisions_scraped() -> float | None:
        answer = try_json(f"{stack.prometheus}/api/v1/query?query={query}")
        result = (answer or {}).get("data", {}).get("result", [])
        value = float(result[0]["value"][1]) if result else None
        return value if value == len(processed.decisions) else None

    wait_for("the scraped decisions count", decisions_scraped, timeout=120)

    alerts = ROOT / "deploy" / "prometheus" / "alerts.yml"
    if alerts.exists():  # the processor's SLO alert rules are loaded
        groups = {g["name"] for g in yaml.safe_load(alerts.read_text())["groups"]}
        rules = get_json(f"{stack.prometheus}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in rules} == groups


def test_grafana_lists_the_provisioned_dashboards(stack: Stack) -> None:
    if "grafana" not in stack.services:
        pytest.skip(
            "no Grafana image on this machine (no registry, no Debian package): "
            "tests/unit/test_compose.py checks its provisioning files"
        )
    titles = {
        json.loads(p.read_text())["title"]
        for p in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")
    }
    assert titles, "deploy/grafana/dashboards/ has dashboards"

    def listed() -> set[str] | None:
        found = try_json(f"{stack.grafana}/api/search?type=dash-db")
        got = {d["title"] for d in found or []}
        return got if titles <= got else None

    wait_for("Grafana to list the dashboards", listed, timeout=300)


def test_the_tail_service_shows_the_decisions(stack: Stack, processed: Processed) -> None:
    # The README's `docker compose run --rm tail`, stopped after a few decisions.
    done = stack.compose(
        "run", "--rm", "-T", "tail", "tail", "--from-beginning", "--max", "5", "--timeout", "120"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shown = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(shown) == 5, done.stdout[-3000:]
    published = {
        orjson.loads(r.value)["decision_id"]: orjson.loads(r.value) for r in processed.decisions
    }
    for decision in shown:
        assert published[decision["decision_id"]] == decision
