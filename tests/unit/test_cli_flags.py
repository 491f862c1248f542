"""The command line offers what each command uses: ``--version``, and per command only the
settings' flags it reads."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from streamrules import __version__, build, config
from streamrules.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _subparser(*path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def _setting_flags(parser: argparse.ArgumentParser) -> set[str]:
    flags = {config.flag_name(n) for n in config.setting_names()}
    return {o for a in parser._actions for o in a.option_strings if o in flags}


def _flags(names: tuple[str, ...]) -> set[str]:
    return {config.flag_name(n) for n in names}


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamrules", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    # and which build runs (streamrules.build: pure Python, or compiled by mypyc)
    assert done.stdout.strip() == f"streamrules {__version__} ({build.describe()})"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__


def test_every_setting_belongs_to_one_group() -> None:
    groups = (
        config.CONNECTION_SETTINGS,
        config.TOPIC_SETTINGS,
        config.PROCESSING_SETTINGS,
        config.SERVICE_SETTINGS,
    )
    listed = [name for group in groups for name in group]
    assert sorted(listed) == sorted(config.setting_names()), "classify each new setting"


CONNECTION = _flags(config.CONNECTION_SETTINGS)


@pytest.mark.parametrize(
    ("command", "wanted"),
    [
        (("run",), _flags(config.setting_names())),
        (
            ("demo",),
            CONNECTION | _flags(config.TOPIC_SETTINGS) | _flags(config.PROCESSING_SETTINGS),
        ),
        (("produce",), CONNECTION | {"--orders-topic", "--incidents-topic", "--dlq-topic"}),
        (("tail",), CONNECTION | {"--decisions-topic"}),
        (
            ("topics", "apply"),  # --acls grants the group's and the transactional ids' ACLs
            (CONNECTION - {"--client-id"})
            | _flags(config.TOPIC_SETTINGS)
            | {"--group-id", "--exactly-once"},
        ),
        (
            ("topics", "describe"),
            (CONNECTION - {"--client-id"})
            | _flags(config.TOPIC_SETTINGS)
            | {"--group-id", "--exactly-once"},
        ),
    ],
)
def test_a_command_offers_the_flags_of_the_settings_it_uses(
    command: tuple[str, ...], wanted: set[str]
) -> None:
    assert _setting_flags(_subparser(*command)) == wanted


def test_an_unused_flag_is_refused_with_the_usage() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamrules", "tail", "--metrics-port", "9464"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --metrics-port" in done.stderr


def test_settings_a_command_does_not_offer_still_come_from_the_environment(
    tmp_path: Path,
) -> None:
    """One TOML file or environment serves every command: keys of the others are fine."""
    conf = tmp_path / "streamrules.toml"
    conf.write_text('metrics_port = 9464\ngroup_id = "g"\ndecisions_topic = "out"\n')
    args = _subparser("produce").parse_args(["--config", str(conf), "-"])
    settings = config.load_settings(args, environ={})
    assert settings.metrics_port == 9464 and settings.decisions_topic == "out"
