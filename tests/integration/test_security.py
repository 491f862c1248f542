"""A secured broker (SASL_SSL with SCRAM-SHA-512, a throw-away CA, the StandardAuthorizer):
`topics`, `produce`, `run` and `tail` work over it with exactly the ACLs `topics apply
--acls` grants, and `run` equals `replay` in both delivery modes; a wrong password, an
unknown CA and each missing ACL give one line naming the cause and exit 2, never a hang;
a WRITE ACL removed during a run stops it with nothing committed past what was delivered;
no password appears in any output or in the broker's logs."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from streamrules import acls, securebroker
from streamrules.generate import generate_events
from tests.integration.conftest import unique_name
from tests.integration.secure_support import (
    LOGICAL,
    SecureBroker,
    recent_start,
    start_secure_broker,
    topic_flags,
)
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli,
    cli_cmd,
    merged_lines,
    replay,
    write_events,
)

MODES = ["at-least-once", "exactly-once"]


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    # Module scope is the session for these tests: they are the only users of the broker.
    yield from start_secure_broker(tmp_path_factory.mktemp("kafka-secure"))


def _names(request: pytest.FixtureRequest) -> dict[str, str]:
    return {name: unique_name(request, name) for name in LOGICAL}


def _last_line(done: subprocess.CompletedProcess[bytes]) -> str:
    lines = done.stderr.decode().strip().splitlines()
    return lines[-1] if lines else ""


def _no_secret(sk: SecureBroker, *outputs: bytes) -> None:
    for password in sk.passwords():
        for out in outputs:
            assert password.encode() not in out, "a password appeared in the output"


def _inputs_and_expected(
    sk: SecureBroker, names: dict[str, str], tmp_path: Path
) -> list[dict[str, object]]:
    inputs = sk.read(names["orders"]) + sk.read(names["incidents"])
    return replay(tmp_path, merged_lines(inputs))


@pytest.mark.parametrize("mode", MODES)
def test_topics_produce_run_tail_over_sasl_ssl_equal_replay(
    mode: str, secure_kafka: SecureBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sk = secure_kafka
    names = _names(request)
    flags = topic_flags(names)
    group = f"g-{names['orders']}"
    eos = ["--exactly-once"] if mode == "exactly-once" else []
    admin = ["--config", str(sk.config("admin"))]
    outputs: list[bytes] = []

    # The topics, and each user's ACLs, by `topics apply` as the administrator.
    for extra in (
        ["--acls", "User:app", "--group-id", group, *eos],
        ["--acls", "User:feeder", "--acls-for", "produce"],
        ["--acls", "User:reader", "--acls-for", "tail"],
    ):
        applied = cli("topics", "apply", *admin, *flags, "--partitions-override", "1", *extra)
        assert applied.returncode == 0, applied.stderr.decode()
        outputs += [applied.stdout, applied.stderr]
    assert "create ACL: ALLOW User:app READ on topic" in outputs[0].decode()
    again = cli(
        "topics", "apply", *admin, *flags, "--partitions-override", "1", "--acls", "User:app",
        "--group-id", group, *eos,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    assert b"ACLs up to date for User:app" in again.stdout
    settings = sk.settings("app", group_id=group, exactly_once=bool(eos), **_topic_settings(names))
    # Exactly the documented ACLs (among those of this test's topics and group).
    mine = [a for a in sk.acls_of("User:app") if any(n in a.resource_name for n in names.values())]
    assert mine == sorted(acls.run_acls("User:app", settings))

    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(31, start=recent_start(), days=0.25, orders_per_hour=240))
    produced = cli(
        "produce", str(events), "--config", str(sk.config("feeder")), *topic_flags(names, "produce")
    )
    assert produced.returncode == 0, produced.stderr.decode()

    # DEBUG logs: whatever the service would log, no password may be in it.
    ran = cli(
        "run",
        "--config",
        str(sk.config("app")),
        *flags,
        "--group-id",
        group,
        *eos,
        "--stop-when-idle",
        "3",
        "--log-level",
        "DEBUG",
        "--log-format",
        "json",
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    tailed = cli(
        "tail",
        "--config",
        str(sk.config("reader")),
        *topic_flags(names, "tail"),
        "--from-beginning",
        "--timeout",
        "3",
    )
    assert tailed.returncode == 0, tailed.stderr.decode()

    expected = _inputs_and_expected(sk, names, tmp_path)
    got = [orjson.loads(line) for line in tailed.stdout.splitlines() if line.strip()]
    assert expected, "the stream should cause decisions"
    assert got == expected

    outputs += [produced.stdout, produced.stderr, ran.stdout, ran.stderr, tailed.stderr]
    assert b"DEBUG" in ran.stderr  # the grep below read the most talkative logs
    _no_secret(sk, *outputs)
    for log in sk.broker.log_dir.iterdir():
        _no_secret(sk, log.read_bytes())


def _topic_settings(names: dict[str, str]) -> dict[str, str]:
    return {
        "orders_topic": names["orders"],
        "incidents_topic": names["incidents"],
        "decisions_topic": names["decisions"],
        "dlq_topic": names["decisions.dlq"],
    }


def _bad_config(sk: SecureBroker, tmp_path: Path, case: str) -> tuple[Path, str]:
    """app's client file with a wrong password, or with the CA file of another CA."""
    text = sk.config("app").read_text()
    if case == "wrong password":
        wrong = "x" + sk.password("app")
        text = text.replace(sk.password("app"), wrong)
        expect = "SASL authentication failed at"
    else:
        other = securebroker.SecureFiles(tmp_path / "other-ca")
        securebroker.write_certificates(other, "127.0.0.1")
        text = text.replace(str(sk.broker.secure_files.ca), str(other.ca))
        expect = f"ssl_cafile {other.ca} does not hold the CA"
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path, expect


@pytest.mark.parametrize("case", ["wrong password", "unknown CA"])
def test_wrong_password_or_unknown_ca_is_one_line_naming_it(
    case: str, secure_kafka: SecureBroker, tmp_path: Path
) -> None:
    sk = secure_kafka
    bad, expect = _bad_config(sk, tmp_path, case)
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(32, start=recent_start(), days=0.01))
    for command in (
        ["run", "--stop-when-idle", "2"],
        ["produce", str(events)],
        ["tail", "--timeout", "2"],
        ["topics", "describe"],
    ):
        done = cli(*command, "--config", str(bad), timeout=120)
        last = _last_line(done)
        assert done.returncode == 2, (command, done.stderr.decode()[-2000:])
        verb = "reach" if command[0] == "topics" else "connect to"
        assert last.startswith(f"streamrules {command[0]}: error: cannot {verb} Kafka at")
        assert expect in last, last
        if case == "wrong password":
            assert "user 'app' (SCRAM-SHA-512)" in last
        _no_secret(sk, done.stdout, done.stderr)
        assert bad.read_text().split('sasl_password = "')[1].split('"')[0] not in last


# Every ACL of `run`, removed in turn (at-least-once needs the first five; exactly-once
# adds the transactional ids), must stop it at once with the ACL named.
ACL_CASES = [("at-least-once", i) for i in range(5)] + [("exactly-once", 5)]


@pytest.mark.parametrize(("mode", "missing"), ACL_CASES)
def test_each_acl_of_run_is_needed_and_named_when_missing(
    mode: str,
    missing: int,
    secure_kafka: SecureBroker,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    sk = secure_kafka
    names = _names(request)
    sk.create_topics(names)
    group = f"g-{names['orders']}"
    eos = mode == "exactly-once"
    settings = sk.settings("app", group_id=group, exactly_once=eos, **_topic_settings(names))
    wanted = acls.run_acls("User:app", settings)
    assert len(wanted) == (6 if eos else 5)
    gone = wanted[missing]
    sk.create_acls([a for a in wanted if a != gone])
    events = tmp_path / "events.jsonl"
    write_events(events, generate_events(33, start=recent_start(), days=0.02))
    fed = cli(
        "produce", str(events), "--config", str(sk.config("admin")), *topic_flags(names, "produce")
    )
    assert fed.returncode == 0, fed.stderr.decode()

    done = cli(
        "run",
        "--config",
        str(sk.config("app")),
        *topic_flags(names),
        "--group-id",
        group,
        *(["--exactly-once"] if eos else []),
        "--stop-when-idle",
        "5",
        timeout=120,
    )
    last = _last_line(done)
    assert done.returncode == 2, done.stderr.decode()[-2000:]
    assert last.startswith("streamrules run: error: "), last
    assert "User:app" in last and gone.operation in last and gone.resource_name in last, last
    assert "Traceback" not in done.stderr.decode()
    assert sk.committed(group) == {}, "nothing may be committed"


@pytest.mark.parametrize("mode", MODES)
def test_write_acl_removed_during_a_run_stops_it_with_nothing_committed_past_delivery(
    mode: str, secure_kafka: SecureBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sk = secure_kafka
    names = _names(request)
    sk.create_topics(names)
    group = f"g-{names['orders']}"
    eos = ["--exactly-once"] if mode == "exactly-once" else []
    settings = sk.settings("app", group_id=group, exactly_once=bool(eos), **_topic_settings(names))
    wanted = acls.run_acls("User:app", settings)
    write_decisions = [a for a in wanted if a.resource_name == names["decisions"]]
    assert [a.operation for a in write_decisions] == ["WRITE"]
    sk.create_acls(wanted)
    items = list(generate_events(34, start=recent_start(), days=0.3, orders_per_hour=240))
    half = len(items) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_events(first, items[:half])
    write_events(second, items[half:])
    admin = ["--config", str(sk.config("admin")), *topic_flags(names, "produce")]
    assert cli("produce", str(first), *admin).returncode == 0
    run = ["run", "--config", str(sk.config("app")), *topic_flags(names), "--group-id", group, *eos]

    proc = subprocess.Popen(
        cli_cmd(*run, "--batch-size", "50", "--log-format", "text"),
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Wait until the first half is processed and committed, then take WRITE away.
        deadline = time.monotonic() + 120
        while sum(sk.committed(group).values()) < half:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the first half was never committed"
            time.sleep(0.2)
        sk.delete_acls(write_decisions)
        assert cli("produce", str(second), *admin).returncode == 0
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    last = err.decode().strip().splitlines()[-1]
    assert proc.returncode == 2, err.decode()[-2000:]
    assert "not authorized to write to topic" in last and names["decisions"] in last, last
    assert "WRITE" in last
    assert b"Traceback" not in err and b"never retrieved" not in err, err.decode()[-3000:]

    # Every decision of what was committed was delivered (read committed)...
    committed = sk.committed(group)
    assert sum(committed.values()) < len(items), "the failure should stop it mid-stream"
    inputs = sk.read(names["orders"]) + sk.read(names["incidents"])
    done = [r for r in inputs if r.offset < committed.get((r.topic, r.partition), 0)]
    delivered = {orjson.loads(r.value)["decision_id"] for r in sk.read(names["decisions"])}
    owed = {d["decision_id"] for d in replay(tmp_path, merged_lines(done))}
    assert owed <= delivered

    # ...so that, WRITE given back, a restart loses nothing.
    sk.create_acls(write_decisions)
    again = cli(*run, "--stop-when-idle", "3")
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    expected = [d["decision_id"] for d in replay(tmp_path, merged_lines(inputs))]
    got = [orjson.loads(r.value)["decision_id"] for r in sk.read(names["decisions"])]
    assert set(got) == set(expected)
    if eos:
        assert got == expected
