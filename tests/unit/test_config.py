"""Settings: precedence flags > environment > file > defaults, validation, docs table."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from streamrules.config import (
    DEFAULT_RULES,
    Settings,
    add_arguments,
    env_name,
    flag_name,
    load_settings,
)
from streamrules.errors import ConfigError

DOC = Path(__file__).resolve().parents[2] / "docs" / "readme" / "configuration.md"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    s = load_settings(_parse([]), environ={})
    assert s == Settings()
    assert s.rules == DEFAULT_RULES
    assert s.bootstrap == "localhost:9092"
    assert s.exactly_once is False


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'group_id = "file"\nclient_id = "file"\nbatch_size = 7\nidle_ms = 3\n'
        'rules = ["a.b", "c.d"]\nexactly_once = true\n'
    )
    env = {"STREAMRULES_GROUP_ID": "env", "STREAMRULES_BATCH_SIZE": "8"}
    s = load_settings(_parse(["--config", str(cfg), "--group-id", "flag"]), environ=env)
    assert s.group_id == "flag"
    assert s.batch_size == 8
    assert s.client_id == "file"
    assert s.idle_ms == 3
    assert s.rules == ("a.b", "c.d")
    assert s.exactly_once is True
    # A boolean flag beats the file too, in its negative form.
    s2 = load_settings(_parse(["--config", str(cfg), "--no-exactly-once"]), environ={})
    assert s2.exactly_once is False


def test_other_components_variables_are_not_settings() -> None:
    env = {"STREAMRULES_BROKER_PORT": "9999", "STREAMRULES_TEST_BOOTSTRAP": "x:1"}
    assert load_settings(_parse([]), environ=env) == Settings()


def test_config_file_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('dlq_topic = "dead"\n')
    s = load_settings(_parse([]), environ={"STREAMRULES_CONFIG": str(cfg)})
    assert s.dlq_topic == "dead"


def test_list_and_optional_values_from_text() -> None:
    env = {
        "STREAMRULES_RULES": "x.y, z.w",
        "STREAMRULES_METRICS_PORT": "9100",
        "STREAMRULES_EXACTLY_ONCE": "yes",
    }
    s = load_settings(_parse(["--rules", "a.b", "--rules", "c.d"]), environ=env)
    assert s.rules == ("a.b", "c.d")
    assert s.metrics_port == 9100
    assert s.exactly_once is True
    assert load_settings(_parse([]), environ=env).rules == ("x.y", "z.w")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"STREAMRULES_BATCH_SIZE": "many"}, "batch_size: must be an integer"),
        ({"STREAMRULES_BATCH_SIZE": "0"}, "batch_size: must be >= 1"),
        ({"STREAMRULES_NOPE": "1"}, "STREAMRULES_NOPE"),
        ({"STREAMRULES_EXACTLY_ONCE": "maybe"}, "exactly_once: must be true or false"),
        ({"STREAMRULES_LOG_FORMAT": "xml"}, "log_format: must be one of"),
        ({"STREAMRULES_BOOTSTRAP_SERVERS": "nohost"}, "bootstrap_servers: expected host:port"),
        ({"STREAMRULES_SECURITY_PROTOCOL": "SASL_SSL"}, "need sasl_mechanism"),
        ({"STREAMRULES_METRICS_PORT": "70000"}, "metrics_port: must be a port"),
        ({"STREAMRULES_SSL_CAFILE": "/no/such/ca.pem"}, "ssl_cafile: no such file"),
    ],
)
def test_bad_environment_names_key_and_source(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_parse([]), environ=env)
    msg = str(err.value)
    assert needle in msg
    assert "environment variable STREAMRULES_" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("group_id = \n", "not valid TOML"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("batch_size = '10'\n", "batch_size: must be an integer"),
        ("exactly_once = 1\n", "exactly_once: must be true or false"),
        ("rules = [1]\n", "rules: must be a list of strings"),
        ("[kafka]\nx = 1\n", "unknown table [kafka]"),
        ("idle_ms = -1\n", "idle_ms: must be >= 0"),
    ],
)
def test_bad_file_names_key_and_source(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(_parse(["--config", str(cfg)]), environ={})
    assert needle in str(err.value)
    assert str(cfg) in str(err.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(_parse(["--config", "/no/such.toml"]), environ={})


def test_bad_flag_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"idle_ms: must be an integer.*flag --idle-ms"):
        load_settings(_parse(["--idle-ms", "soon"]), environ={})


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.group_id = "x"  # type: ignore[misc]


def test_configuration_doc_table_matches_settings() -> None:
    rows = [
        [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        for line in DOC.read_text().splitlines()
        if re.match(r"\|\s*`", line)
    ]
    fields = dataclasses.fields(Settings)
    assert [r[0] for r in rows] == [f.name for f in fields]
    for row, f in zip(rows, fields, strict=True):
        _key, flag, env, default = row[:4]
        assert flag == flag_name(f.name)
        assert env == env_name(f.name)
        if f.default is None:
            assert default == "unset"
        elif isinstance(f.default, tuple):
            assert tuple(default.split(",")) == f.default
        elif isinstance(f.default, bool):
            assert default == str(f.default).lower()
        else:
            assert default == str(f.default)
