"""Helpers for the service's integration tests (no tests here): the real CLI as a
subprocess, topic flags, reading a topic back, and the merged order that `run` follows."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import orjson

from streamrules.codec import Decoder, Record
from streamrules.config import Settings
from streamrules.errors import DecodeError
from streamrules.merge import Buffered, merge_sorted
from streamrules.transport.kafka import ConsumedRecord, follow

ROOT = Path(__file__).resolve().parents[2]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without any STREAMRULES_* setting of the machine running the tests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMRULES_")}
    env.update(extra or {})
    return env


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "streamrules", *args]


def cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 300, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        cli_cmd(*args),
        input=stdin,
        capture_output=True,
        env=clean_env(env),
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def topic_flags(bootstrap: str, names: Mapping[str, str]) -> list[str]:
    flags = ["--bootstrap-servers", bootstrap]
    for logical, flag in (
        ("orders", "--orders-topic"),
        ("incidents", "--incidents-topic"),
        ("decisions", "--decisions-topic"),
        ("decisions.dlq", "--dlq-topic"),
    ):
        if logical in names:
            flags += [flag, names[logical]]
    return flags


def produce_flags(bootstrap: str, names: Mapping[str, str]) -> list[str]:
    """``topic_flags`` for ``streamrules produce``, which takes no decisions topic."""
    return topic_flags(bootstrap, {k: v for k, v in names.items() if k != "decisions"})


def read_topic(bootstrap: str, topic: str, idle_s: float = 3.0) -> list[ConsumedRecord]:
    """Every committed record of ``topic``, each partition in offset order."""

    async def go() -> list[ConsumedRecord]:
        settings = Settings(bootstrap_servers=bootstrap, client_id="test-reader")
        return [
            r async for r in follow(settings, topic, from_beginning=True, idle_timeout_s=idle_s)
        ]

    return asyncio.run(go())


def merged_lines(
    records: Iterable[ConsumedRecord], names: Mapping[str, str] | None = None
) -> list[bytes]:
    """Input records in the order `run` processes them (event-time merge of partitions).

    With ``names`` (logical -> real topic names), records sent to the wrong input topic
    for their type are left out: `run` dead-letters them (`schema`), while `replay`, which
    derives the topic from the type, would take them as events; ``wrong_topic`` counts them.
    """
    decoder = Decoder(names)
    streams: dict[tuple[str, int], list[Buffered[bytes]]] = {}
    for r in records:
        try:
            ts: int | None = decoder.decode(
                Record(r.topic, r.partition, r.offset, r.key, r.value)
            ).ts_ms
        except DecodeError as exc:
            if "belongs on topic" in exc.message:
                continue
            ts = None
        streams.setdefault((r.topic, r.partition), []).append(
            Buffered(ts, r.topic, r.partition, r.offset, r.value)
        )
    return [b.item for b in merge_sorted(streams.values())]


def wrong_topic(records: Iterable[ConsumedRecord], names: Mapping[str, str]) -> int:
    decoder = Decoder(names)
    n = 0
    for r in records:
        try:
            decoder.decode(Record(r.topic, r.partition, r.offset, r.key, r.value))
        except DecodeError as exc:
            n += "belongs on topic" in exc.message
    return n


def replay(tmp: Path, lines: Sequence[bytes]) -> list[dict[str, object]]:
    """`streamrules replay` on these lines: the decisions, in firing order."""
    path = tmp / "merged.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    done = cli("replay", str(path), "--dead-letters", str(tmp / "replay-dead.jsonl"))
    assert done.returncode == 0, done.stderr.decode()
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def replay_dead_reasons(tmp: Path) -> list[str]:
    return [
        orjson.loads(line)["reason"]
        for line in (tmp / "replay-dead.jsonl").read_bytes().splitlines()
        if line.strip()
    ]


def write_events(path: Path, items: Iterable[tuple[str, bytes | None, bytes]]) -> list[bytes]:
    values = [v for _, _, v in items]
    path.write_bytes(b"".join(v + b"\n" for v in values))
    return values
