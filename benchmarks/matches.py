"""Benchmark of reading the matches (outside the processing flow): what py-rete's idioms
cost as the rule base grows, streamrules only.

The rule base is the rule-scaling workload's (R productions, rule i on its own constant,
joined to a shared fact type), at R = 10, 1,000 and 10,000. Measured, per size:

- ``list(net.matches)`` and ``list(net.new_matches)`` with one match present: one read;
- an event the py-rete way: add the fact, ``for m in net.matches: m.fire()``, retract;
- an event with ``get_new_match``: add, ``while m := net.get_new_match(): m.fire()``,
  retract (py-rete's own benchmark loop);
- the same event with ``run()``, for reference (the scaling workload's loop).

Reading the matches costs what they are, not the number of productions, so each line
should stay flat across R, as ``run()`` does. CPU time (``time.process_time``), medians of
the repeats, the sizes taking turns (as in the scaling workload).
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable

from benchmarks.engines import sr
from benchmarks.harness import Options, clock, fmt, table
from benchmarks.workloads import N_SHARED, scaling_events
from streamrules.rete import ReteNetwork

LINES = (
    "list(net.matches), 1 match",
    "list(net.new_matches), 1 match",
    "event, for m in net.matches: m.fire()",
    "event, get_new_match() loop",
    "event, run()",
)


def sizes(opts: Options) -> tuple[int, ...]:
    return (10, 1000) if opts.quick else (10, 1000, 10000)


def _reads(net: ReteNetwork, n: int, new: bool) -> float:
    f = net.add_fact(sr.Ev(eid=-1, kind=0, key=0))  # rule 0 with shared fact 0: one match
    assert len(list(net.new_matches if new else net.matches)) == 1
    start = clock()
    if new:
        for _ in range(n):
            list(net.new_matches)
    else:
        for _ in range(n):
            list(net.matches)
    elapsed = clock() - start
    net.remove_fact(f)
    return elapsed / n * 1e6


def _events(net: ReteNetwork, events: list[tuple[int, int, int]], how: str) -> float:
    """us per event of the scaling stream, fired in the way ``how`` names."""

    def by_matches() -> None:
        for m in net.matches:
            m.fire()

    def by_get_new_match() -> None:
        while (m := net.get_new_match()) is not None:
            m.fire()

    fires: dict[str, Callable[[], object]] = {
        "matches": by_matches,
        "get_new_match": by_get_new_match,
        "run": net.run,
    }
    fire = fires[how]
    add, remove, Ev = net.add_fact, net.remove_fact, sr.Ev
    start = clock()
    for eid, kind, key in events:
        f = add(Ev(eid=eid, kind=kind, key=key))
        fire()
        remove(f)
    return (clock() - start) / len(events) * 1e6


def run(opts: Options) -> dict[int, dict[str, float]]:
    """us per read or per event, by R and by line (medians of max(repeat, 3) runs)."""
    n_events = 2_000 if opts.quick else 10_000
    n_reads = 2_000 if opts.quick else 10_000
    runs: dict[int, dict[str, list[float]]] = {r: {x: [] for x in LINES} for r in sizes(opts)}
    nets = {}
    for r in sizes(opts):
        nets[r] = sr.scaling(r)
    gc.collect()  # (the build's garbage: see the harness)
    for _ in range(max(opts.repeat, 3)):
        for r in sizes(opts):
            bench = nets[r]
            net = bench.net
            events = scaling_events(n_events, r)
            got = runs[r]
            got[LINES[0]].append(_reads(net, n_reads, new=False))
            got[LINES[1]].append(_reads(net, n_reads, new=True))
            for line, how in zip(LINES[2:], ("matches", "get_new_match", "run"), strict=True):
                before = len(bench.decisions)
                got[line].append(_events(net, events, how))
                made = len(bench.decisions) - before
                assert made == sum(1 for _, _, k in events if k < N_SHARED), (r, how, made)
    out = {r: {x: statistics.median(v) for x, v in by.items()} for r, by in runs.items()}
    for r, by in out.items():
        opts.out(f"  matches R={r:,}: " + ", ".join(f"{x} {fmt(v, 2)} us" for x, v in by.items()))
    return out


def report(res: dict[int, dict[str, float]]) -> str:
    rs = sorted(res)
    lo, hi = rs[0], rs[-1]
    rows = [
        [line]
        + [fmt(res[r][line], 2) for r in rs]
        + [f"{res[hi][line] / res[lo][line]:.2f}x" if res[lo][line] else "-"]
        for line in LINES
    ]
    headers = ["us per read or event", *[f"R={r:,}" for r in rs], f"R={hi:,} / R={lo}"]
    return table(headers, rows)
