"""``streamrules replay``: the whole flow without Kafka, from a JSONL file or stdin.

Each line is one event (the value a producer would put on ``orders`` or ``incidents``; the
topic is derived from the event's ``type``). Lines go through ``streamrules.pipeline``
in file order, one at a time, exactly as the Kafka service processes records in its
merged order; decisions are printed on stdout as JSONL in firing order, dead letters on
stderr (``line N: reason: message``) or to ``--dead-letters FILE`` as JSONL, and a summary
ends stderr. Reading a file with standard error on a terminal, a progress bar (rich, as the
demo's) shows how far it got, updated between chunks of lines so the per-line path stays
as it is. A bad line never stops the replay; a bad flag or an unreadable file stops it
at the start with exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from itertools import islice
from typing import IO, Any

import orjson

from streamrules.codec import DecodeError, Decoder, Event, Record
from streamrules.codec.events import positional_maker
from streamrules.errors import ConfigError
from streamrules.pipeline import (
    DeadLetter,
    Pipeline,
    StepResult,
    freeze_startup_objects,
    thaw_startup_objects,
)
from streamrules.rules import DEFAULT_RULES

_make_record = positional_maker(Record)  # one per line: the hot path
# Lines fed between two updates of the progress bar.
_PROGRESS_LINES = 20_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "replay",
        help="run the rules over a JSONL file of events; print decisions as JSONL",
        description=(
            "Run the rules over events read from a JSONL file (or - for stdin), one event "
            "per line, in file order. Decisions go to stdout as JSONL, in firing order; "
            "dead letters (with line numbers) and a summary go to stderr."
        ),
    )
    add_rules_flag(parser)
    parser.add_argument(
        "--allowed-lateness",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds an event may be older than the watermark and still count "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--dead-letters",
        metavar="FILE",
        help="write dead letters to FILE as JSONL (line, reason, message, value) instead of stderr",
    )
    parser.add_argument("file", metavar="FILE", help="JSONL events, or - for stdin")
    parser.set_defaults(func=run)


def add_rules_flag(parser: argparse.ArgumentParser) -> None:
    """``--rules`` as ``replay`` and ``graph`` take it (repeatable; default both packs)."""
    parser.add_argument(
        "--rules",
        action="append",
        metavar="MOD_OR_FILE",
        help=f"rule module path or .py file; repeat for more (default: {' '.join(DEFAULT_RULES)})",
    )


def run(args: argparse.Namespace) -> int:
    lateness = args.allowed_lateness
    if not (lateness >= 0 and math.isfinite(lateness)):
        raise ConfigError(f"--allowed-lateness must be a number of seconds >= 0, not {lateness}")
    # Rules first: a bad --rules must fail before any file is created.
    pipeline = Pipeline(args.rules or DEFAULT_RULES, allowed_lateness_ms=round(lateness * 1000))
    freeze_startup_objects()
    with ExitStack() as stack:
        # Called in-process (tests, embedding): leave the collector as it was on the way out.
        stack.callback(thaw_startup_objects)
        source = _open_input(args.file, stack)
        dead_out = None
        if args.dead_letters:
            try:
                dead_out = stack.enter_context(open(args.dead_letters, "wb"))
            except OSError as exc:
                raise ConfigError(f"--dead-letters {args.dead_letters}: {exc.strerror}") from None
        replay = _Replay(pipeline, sys.stdout.buffer, dead_out)
        try:
            _feed(replay, source, args.file)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (``| head``): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        finally:
            _print_summary(replay.lines, pipeline.stats())
    return 0


def _feed(replay: _Replay, source: IO[bytes], path: str) -> None:
    """All of ``source``; with a progress bar when it is a file and stderr a terminal."""
    size = None if path == "-" else _size(source)
    if size is None or not sys.stderr.isatty():
        replay.feed(source)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # transient: the bar goes when done, the summary stays. Dead letters printed to stderr
    # meanwhile appear above it (rich redirects stderr while it draws).
    progress = Progress(
        TextColumn("replaying"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]:,} lines"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        task = progress.add_task("replay", total=size, lines=0)
        while True:
            before = replay.lines
            replay.feed(islice(source, _PROGRESS_LINES))
            progress.update(task, completed=source.tell(), lines=replay.lines)
            if replay.lines == before:
                return


def _size(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size if source.seekable() else None
    except (OSError, ValueError):
        return None


def _open_input(path: str, stack: ExitStack) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return stack.enter_context(open(path, "rb"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


class _Replay:
    """Lines -> records -> pipeline -> output, one line at a time."""

    def __init__(self, pipeline: Pipeline, out: IO[bytes], dead_out: IO[bytes] | None) -> None:
        self.pipeline = pipeline
        self.out = out
        self.dead_out = dead_out
        self.lines = 0
        self._decoder = Decoder()

    def feed(self, source: Iterable[bytes]) -> None:
        # One loop, no generator in between: this is the replay's per-line path. Each
        # line is decoded once, here; the pipeline takes the event as it is. Its record
        # keeps topic "" and no key: replay reports a dead letter by line number (the
        # offset) and value only, and the topic is only checked on input topics.
        # One StepResult for the whole file, emptied after each line: the pipeline appends
        # a line's decisions and dead letters to it (no result object per line).
        step = StepResult()
        decisions = step.decisions
        dead_letters = step.dead_letters
        process_into = self.pipeline._process_into
        decode = self._decoder.decode
        write = self.out.write
        lineno = self.lines  # a later call goes on where the last one stopped
        for raw in source:
            lineno += 1
            self.lines = lineno
            line = raw.rstrip(b"\r\n")
            if not line or line.isspace():
                continue  # blank lines separate nothing and carry nothing
            # Line numbers are offset + 1.
            record = _make_record("", 0, lineno - 1, None, line, ())
            try:
                item: Record | Event = decode(record)
            except DecodeError:
                item = record  # the pipeline decodes it again, dead-letters and counts it
            process_into(item, step)
            if decisions:
                if len(decisions) == 1:
                    write(decisions[0].to_json() + b"\n")
                else:
                    write(b"".join([d.to_json() + b"\n" for d in decisions]))
                decisions.clear()
            if dead_letters:
                for dead in dead_letters:
                    self._dead_letter(dead)
                dead_letters.clear()

    def _dead_letter(self, dead: DeadLetter) -> None:
        line = dead.record.offset + 1
        if self.dead_out is not None:
            value = dead.record.value.decode("utf-8", errors="replace")
            entry = {"line": line, "reason": dead.reason, "message": dead.message, "value": value}
            self.dead_out.write(orjson.dumps(entry) + b"\n")
        else:
            message = " ".join(dead.message.split())
            print(f"line {line}: {dead.reason}: {message}", file=sys.stderr)


def _print_summary(lines: int, stats: Mapping[str, Any]) -> None:
    def counts(name: str) -> str:
        by: Mapping[str, int] = stats.get(name) or {}
        return ", ".join(f"{k} {v}" for k, v in by.items()) or "none"

    def n(name: str) -> Any:
        return stats.get(name, 0)

    lines_out = [
        f"{lines} lines, {n('events')} events processed, {n('duplicates')} duplicates, "
        f"{n('unknown_incidents')} acks/resolutions of unknown incidents, "
        f"watermark {stats.get('watermark') or 'none'}",
        f"facts live {n('facts_live')} (orders {n('orders_live')}, "
        f"incidents {n('incidents_live')})",
        f"decisions {n('decisions')} ({counts('decisions_by_rule')})",
        f"dead letters {n('dead_letters')} ({counts('dead_letters_by_reason')})",
    ]
    for text in lines_out:
        print(f"replay: {text}", file=sys.stderr)
