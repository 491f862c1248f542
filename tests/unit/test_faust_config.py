"""The Faust runtime's start-up checks, without a broker: `run --runtime` takes aiokafka or
faust only, settings the Faust runtime does not offer stop it at start (one line, exit 2),
as does a bad setting under `faust -A streamrules.faust.app`; Faust's broker URL."""

from __future__ import annotations

import subprocess
import sys

import pytest

from streamrules.config import Settings
from tests.integration.test_service_support import ROOT, clean_env, cli

pytest.importorskip("faust", reason="the faust extra (faust-streaming) is not installed")


def _one_line(stderr: bytes) -> str:
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr.decode()
    return lines[0]


def test_an_unknown_runtime_is_one_line_and_exit_2() -> None:
    done = cli("run", "--runtime", "fast", "--bootstrap-servers", "127.0.0.1:1")
    assert done.returncode == 2
    assert "--runtime must be one of aiokafka, faust, got 'fast'" in _one_line(done.stderr)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--exactly-once"], "exactly_once"),
        (["--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN"], "PLAINTEXT"),
    ],
)
def test_settings_the_faust_runtime_does_not_offer_stop_it_at_start(
    flags: list[str], named: str
) -> None:
    done = cli("run", "--runtime", "faust", "--bootstrap-servers", "127.0.0.1:1", *flags)
    assert done.returncode == 2
    assert named in _one_line(done.stderr)


def test_the_faust_command_line_with_a_bad_setting_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "faust", "-A", "streamrules.faust.app", "worker"],
        cwd=ROOT,
        env=clean_env({"STREAMRULES_BATCH_SIZE": "0"}),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "batch_size: must be >= 1, got 0" in _one_line(done.stderr)


def test_faust_broker_url() -> None:
    from streamrules.faust import faust_broker_url

    settings = Settings(bootstrap_servers="k1:9092, k2:9093")
    assert faust_broker_url(settings) == "kafka://k1:9092;kafka://k2:9093"
