"""Profile ``streamrules replay`` with both packs: CPU time, events/s and the hot spots.

Usage::

    python -m streamrules.generate --days 3 --seed 7 > /tmp/ev.jsonl
    python benchmarks/profile_replay.py /tmp/ev.jsonl            # best of 3, CPU time
    python benchmarks/profile_replay.py /tmp/ev.jsonl --profile  # + cProfile top functions

CPU time (``time.process_time``) rather than wall time: the machine is shared and noisy.
The replay runs in-process through the real command code, output to /dev/null.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

from streamrules.commands.replay import _Replay
from streamrules.pipeline import Pipeline, freeze_startup_objects, thaw_startup_objects
from streamrules.rules import DEFAULT_RULES


def replay_once(path: Path) -> tuple[float, int]:
    """Replay ``path`` once; returns (CPU seconds, records)."""
    pipeline = Pipeline(DEFAULT_RULES)
    freeze_startup_objects()  # as the command does
    with open(path, "rb") as source, open("/dev/null", "wb") as out:
        replay = _Replay(pipeline, out, out)
        start = time.process_time()
        replay.feed(source)
        elapsed = time.process_time() - start
    thaw_startup_objects()  # the next run's pipeline must not find this one frozen
    return elapsed, int(pipeline.stats()["records"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="profile streamrules replay (both packs)")
    parser.add_argument("file", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args(argv)
    seconds, events = min(replay_once(args.file) for _ in range(args.runs))
    if not events or seconds <= 0:  # e.g. an empty file: the start-up baseline
        print(f"best of {args.runs}: {seconds:.2f} s CPU, {events} records")
        return 0
    print(
        f"best of {args.runs}: {seconds:.2f} s CPU, {events} records, "
        f"{events / seconds:,.0f} events/s, {seconds / events * 1e6:.1f} us/event"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        replay_once(args.file)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
        print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
