"""Configuration mistakes stop `streamrules run` at start: exit 2 and one line naming the
key and where it came from (no broker needed, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_service_support import cli


def _one_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr.decode()
    assert "Traceback" not in lines[0]
    return lines[0]


def test_bad_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("group_id = \n")
    done = cli("run", "--config", str(cfg))
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "not valid TOML" in line and str(cfg) in line


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('group_id = "g"\nbatchsize = 10\n')
    done = cli("run", "--config", str(cfg))
    assert done.returncode == 2
    assert "unknown key 'batchsize'" in _one_line(done.stderr)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STREAMRULES_BATCH_SIZE": "lots"}, "STREAMRULES_BATCH_SIZE"),
        ({"STREAMRULES_IDLE_MS": "-5"}, "idle_ms: must be >= 0"),
        ({"STREAMRULES_GROUPID": "x"}, "STREAMRULES_GROUPID"),
    ],
)
def test_bad_environment(env: dict[str, str], needle: str) -> None:
    done = cli("run", env=env)
    assert done.returncode == 2
    assert needle in _one_line(done.stderr)


def test_bad_flag_value() -> None:
    done = cli("run", "--metrics-port", "http")
    assert done.returncode == 2
    assert "metrics_port: must be an integer" in _one_line(done.stderr)


def test_bad_rules_module() -> None:
    done = cli("run", "--rules", "no.such.rules_module")
    assert done.returncode == 2
    assert "no.such.rules_module" in _one_line(done.stderr)


def test_missing_topic_is_named(kafka_bootstrap: str) -> None:
    done = cli(
        "run",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--orders-topic",
        "no-such-orders-x",
        "--log-level",
        "WARNING",
    )
    assert done.returncode == 2
    line = _one_line(done.stderr)
    assert "missing topic" in line and "no-such-orders-x" in line
