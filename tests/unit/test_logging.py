"""Service logging: the Kafka client's records are summarised, never a flood."""

from __future__ import annotations

import io
import logging
import sys

import orjson

from streamrules.logging import ClientLogFilter, configure_logging


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Retriable(Exception):
    retriable = True


class GroupCoordinatorNotAvailableError(Exception):
    retriable = True


def _record(name: str, level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_line_per_kind_per_window_with_a_count() -> None:
    clock = _Clock()
    f = ClientLogFilter(window_s=10, clock=clock)
    passed = []
    for i in range(1000):
        clock.now = i * 0.015  # 15 s of a failing connection, about 67 lines a second
        rec = _record("aiokafka.conn", logging.WARNING, "Unable connect to %s", "b:9092")
        if f.filter(rec):
            passed.append(rec.getMessage())
    assert passed[0] == "Unable connect to b:9092"
    assert len(passed) == 2
    assert "held back" in passed[1] and "666 more" in passed[1]
    other = _record("aiokafka.client", logging.WARNING, "Unable to update metadata")
    assert f.filter(other), "another kind has its own window"
    ours = _record("streamrules.app", logging.WARNING, "broker unreachable")
    assert all(f.filter(ours) for _ in range(5)), "the service's own lines are never held"


def test_retried_errors_are_warnings_and_a_missing_coordinator_is_information() -> None:
    f = ClientLogFilter(window_s=10, clock=_Clock())
    rec = _record("aiokafka.consumer.fetcher", logging.ERROR, "Failed fetch: %s", _Retriable())
    assert f.filter(rec) and rec.levelname == "WARNING"
    rec = _record(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        "Group Coordinator Request failed: %s",
        GroupCoordinatorNotAvailableError(),
    )
    # aiokafka logs at WARNING and above: demoted to INFO, the record goes nowhere.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    assert not f.filter(rec) and rec.levelname == "INFO"
    refused = _record("aiokafka", logging.ERROR, "Unable connect: %s", ConnectionRefusedError())
    assert f.filter(refused) and refused.levelname == "WARNING"
    try:
        raise ValueError("x")
    except ValueError:
        fatal = logging.LogRecord(
            "aiokafka.conn", logging.ERROR, __file__, 1, "Unexpected", (), sys.exc_info()
        )
    assert f.filter(fatal) and fatal.levelname == "ERROR"


def test_configure_logging_installs_the_filter() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    configure_logging("INFO", "json", stream=out)
    try:
        log = logging.getLogger("aiokafka.conn")
        for _ in range(500):
            log.warning("Unable connect to %s", "b:9092")
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_streamrules", False)]:
            root.removeHandler(handler)
        root.setLevel(level)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 1 and lines[0]["level"] == "WARNING"
