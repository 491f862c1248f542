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

Settings (``--rules``, ``--allowed-lateness-ms``, ``--max-future-ms``,
``--max-record-bytes``, ``--max-firings-per-event``) are those of ``streamrules run``,
read the same way (flags > ``STREAMRULES_*`` > ``--config``). A file is history: the
future check is off unless ``max_future_ms`` is set or ``--now`` is given. A line longer
than ``max_record_bytes`` is never held whole: it is a dead letter, its bytes streamed to
``--dead-letters``.
"""

from __future__ import annotations

import argparse
import codecs
import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from functools import partial
from itertools import islice
from typing import IO, Any

import orjson

from streamrules import config
from streamrules.codec import DecodeError, Decoder, Event, Record, parse_rfc3339
from streamrules.codec.decode import wall_clock_ms
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
_BOM = b"\xef\xbb\xbf"
# What an oversized line is read in, past its first max_record_bytes.
_CHUNK = 1 << 16
# The settings replay takes (the rest are the service's).
REPLAY_SETTINGS = (
    "rules",
    "allowed_lateness_ms",
    "max_future_ms",
    "max_record_bytes",
    "max_firings_per_event",
)


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
    config.add_arguments(parser, REPLAY_SETTINGS)
    # The old name took seconds: kept only to say so, rather than let argparse take it as
    # an abbreviation of --allowed-lateness-ms (60 would then mean 60 ms).
    parser.add_argument("--allowed-lateness", dest="old_lateness", help=argparse.SUPPRESS)
    parser.add_argument(
        "--now",
        metavar="TIME",
        help="the wall clock for the future check, RFC 3339 (reproduces a service run; "
        "turns the check on with max_future_ms, default 1 hour)",
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
    if args.old_lateness is not None:
        raise ConfigError(
            "--allowed-lateness (seconds) is now --allowed-lateness-ms (milliseconds), "
            "as for streamrules run"
        )
    settings = config.load_settings(args)
    decoder = _decoder(settings, args.now)
    # Rules first: a bad --rules must fail before any file is created.
    pipeline = Pipeline(
        settings.rules,
        allowed_lateness_ms=settings.allowed_lateness_ms,
        decoder=decoder,
        max_firings_per_event=settings.max_firings_per_event,
    )
    freeze_startup_objects()
    with ExitStack() as stack:
        # Called in-process (tests, embedding): leave the collector as it was on the way out.
        stack.callback(thaw_startup_objects)
        source = _open_input(args.file, stack)
        _refuse_output_onto(source, args.file, args.dead_letters)
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
            replay.feed(source, _PROGRESS_LINES)
            progress.update(task, completed=source.tell(), lines=replay.lines)
            if replay.lines == before:
                return


def _size(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size if source.seekable() else None
    except (OSError, ValueError):
        return None


def _decoder(settings: config.Settings, now: str | None) -> Decoder:
    """The replay's decoder: the size limit always; the future check only when asked."""
    clock: Callable[[], int] = wall_clock_ms
    max_future_ms = settings.max_future_ms
    if now is not None:
        try:
            now_ms = parse_rfc3339(now)[1]
        except ValueError:
            raise ConfigError(f"--now: not an RFC 3339 time with a zone: {now!r}") from None
        clock = partial(int, now_ms)  # always that time
        if max_future_ms is None:
            max_future_ms = config.DEFAULT_MAX_FUTURE_MS
    return Decoder(
        max_record_bytes=settings.max_record_bytes,
        max_future_ms=max_future_ms or 0,
        wall_clock_ms=clock,
    )


def _refuse_output_onto(source: IO[bytes], path: str, dead_letters: str | None) -> None:
    """Refuse an output that is the input (also through links): opening it for writing
    would empty the input, writing onto it would read back what was written."""
    try:
        inp = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):
        return  # not a file (a test's stream): nothing to overwrite
    if not stat.S_ISREG(inp.st_mode):
        return  # a pipe or a terminal
    name = "standard input" if path == "-" else path
    if dead_letters is not None:
        try:
            out = os.stat(dead_letters)
        except OSError:
            out = None  # a new file
        if out is not None and (out.st_dev, out.st_ino) == (inp.st_dev, inp.st_ino):
            raise ConfigError(f"--dead-letters {dead_letters} is the input {name}: not written")
    try:
        std = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        return
    if (std.st_dev, std.st_ino) == (inp.st_dev, inp.st_ino):
        raise ConfigError(f"standard output is the input {name}: not written")


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
        self._decoder = pipeline.decoder

    def feed(self, source: IO[bytes] | Iterable[bytes], max_lines: int | None = None) -> None:
        """Lines of ``source`` (all, or the next ``max_lines``: the progress bar's chunks)."""
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
        # Never more than the largest record (and its line end) at once: a longer line is
        # a dead letter whatever it holds, and is not read whole (see _oversized).
        # Lines already in memory (the soak benchmark feeds lists) are taken as they are.
        limit = self._decoder.max_record_bytes
        cap = -1 if limit is None else limit + 2
        readline = getattr(source, "readline", None)
        lines = iter(source) if readline is None else iter(partial(readline, cap), b"")
        if max_lines is not None:
            lines = islice(lines, max_lines)
        for raw in lines:
            lineno += 1
            self.lines = lineno
            if lineno == 1 and raw.startswith(_BOM):
                raw = raw[3:]  # a UTF-8 byte order mark starts the file, not the event
            line = raw.rstrip(b"\r\n")
            oversized = len(raw) == cap and raw[-1:] != b"\n" and readline is not None
            if oversized:
                line = raw  # the line goes on: dead-lettered for its size, read on below
            elif not line or line.isspace():
                continue  # blank lines separate nothing and carry nothing
            # Line numbers are offset + 1.
            record = _make_record("", 0, lineno - 1, None, line, ())
            try:
                item: Record | Event = decode(record)
            except DecodeError:
                item = record  # the pipeline decodes it again, dead-letters and counts it
            process_into(item, step)
            if oversized:
                self._oversized(record, step.dead_letters, source)  # type: ignore[arg-type]
                dead_letters.clear()
                continue
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

    def _oversized(self, record: Record, dead: list[DeadLetter], source: IO[bytes]) -> None:
        """Report the dead letter of a line longer than max_record_bytes (its first bytes
        are ``record.value``) and read the rest of it from ``source``, in chunks: to
        ``--dead-letters`` with the whole original line as its value, else skipped."""
        (letter,) = [d for d in dead if d.record is record]
        rest = iter(partial(source.readline, _CHUNK), b"")
        if self.dead_out is None:
            self._dead_letter(letter)
            for chunk in rest:
                if chunk.endswith(b"\n"):
                    break
            return
        head = {"line": record.offset + 1, "reason": letter.reason, "message": letter.message}
        write = self.dead_out.write
        write(orjson.dumps(head)[:-1] + b',"value":"')
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = b""  # a final "\r" waits: it belongs to the line end if "\n" follows
        chunk = record.value
        while True:
            end = chunk.endswith(b"\n")
            data = (held + chunk).rstrip(b"\r\n") if end else held + chunk
            held = b""
            if not end and data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            write(orjson.dumps(text.decode(data, final=end))[1:-1])
            if end:
                break
            chunk = next(rest, b"\n")
        write(b'"}\n')

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
