"""Benchmark (c)'s target alone, repeat by repeat: streamrules at R=10 and R=10,000 built
and run in turn in one process, each repeat's ratio printed.

Usage::

    python -m benchmarks.scaling_pairs              # 7 repeats of 20,000 events each
    python -m benchmarks.scaling_pairs --repeat 3 --events 5000 --big 1000

The harness (``python -m benchmarks --only scaling``) prints the median of its repeats;
this prints each one, which is what "within 1.5x on every run" is about, on a machine
shared with other work. Each repeat builds both networks anew (the build is not timed)
and times the stream in CPU time, as the harness does.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from benchmarks import workloads
from benchmarks.engines import plain, sr


def one_run(rules: int, stream: list[tuple[int, int, int]]) -> float:
    """Microseconds of CPU per event of ``stream`` through (c) at ``rules`` productions."""
    gc.collect()
    runner = sr.scaling(rules)
    gc.collect()  # (the build's garbage, as in the harness: not in the timed events)
    n = len(stream)
    start = time.process_time()
    for i in range(10):  # the harness's tenths
        runner.feed(stream[n * i // 10 : n * (i + 1) // 10])
    elapsed = time.process_time() - start
    floor = plain.scaling(rules)  # the decisions, as the harness checks them
    floor.feed(stream)
    if sorted(runner.decisions) != sorted(floor.decisions):
        raise SystemExit(f"R={rules}: wrong decisions ({len(runner.decisions)})")
    return elapsed / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    sizes = (args.small, args.big)
    streams = {r: workloads.scaling_events(args.events, r) for r in sizes}
    times: dict[int, list[float]] = {r: [] for r in sizes}
    ratios: list[float] = []
    for rep in range(args.repeat):
        for r in sizes:
            times[r].append(one_run(r, streams[r]))
        ratios.append(times[args.big][-1] / times[args.small][-1])
        print(
            f"repeat {rep + 1}: R={args.small} {times[args.small][-1]:.2f}, "
            f"R={args.big:,} {times[args.big][-1]:.2f} us/event, ratio {ratios[-1]:.2f}",
            flush=True,
        )
    small, big = statistics.median(times[args.small]), statistics.median(times[args.big])
    print(
        f"medians: R={args.small} {small:.2f}, R={args.big:,} {big:.2f} us/event, "
        f"ratio {big / small:.2f}; ratios {min(ratios):.2f} to {max(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
