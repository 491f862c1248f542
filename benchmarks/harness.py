"""Benchmark harness (outside the processing flow): runs each workload on each engine,
times it in tenths of the stream, checks every engine's decisions against plain Python,
and prints medians, events/s, streamrules/peer ratios, drift and the targets.

Timing covers the stream only (building the rules and loading the fixed facts is
excluded and shown apart). Times are the process's CPU time (``time.process_time``): the
engines run single-threaded in this process, and on a shared machine wall time mostly
measures the neighbours. Drift is the time of the last tenth of the stream over the
first: an engine whose memory or matching degrades shows it there.
"""

from __future__ import annotations

import gc
import importlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import ModuleType
from typing import Any

from benchmarks import workloads
from benchmarks.engines import Unsupported

clock = time.process_time  # CPU time of this process: see the module docstring

MODULES = {
    "streamrules": "benchmarks.engines.sr",
    "clips": "benchmarks.engines.clips_engine",
    "durable": "benchmarks.engines.durable_engine",
    "experta": "benchmarks.engines.experta_engine",
    "pyrete": "benchmarks.engines.pyrete_engine",
    "plain": "benchmarks.engines.plain",
}
PEERS = ("clips", "durable", "experta", "pyrete", "plain")
SR = "streamrules"


@dataclass
class Options:
    quick: bool = False
    full: bool = False
    repeat: int = 3
    engines: tuple[str, ...] = tuple(MODULES)
    budget_s: float = 60.0  # per engine and cell, over all repeats
    out: Callable[[str], None] = print


@dataclass
class Cell:
    """One engine on one workload (or one size of it)."""

    engine: str
    events: int = 0
    seconds: float | None = None  # median over repeats, of the timed part
    build_s: float | None = None
    drift: float | None = None
    check: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        if self.seconds is None or not self.seconds or not self.events:
            return None
        return self.events / self.seconds

    @property
    def us_per_event(self) -> float | None:
        if self.seconds is None or not self.events:
            return None
        return self.seconds / self.events * 1e6


def load(engine: str) -> ModuleType | str:
    """The engine's module, or why it cannot be used."""
    try:
        return importlib.import_module(MODULES[engine])
    except ImportError as exc:
        return f"not installed ({exc.name}): pip install -e '.[bench]' (see benchmarks/README.md)"


def _chunks(items: Sequence[Any], parts: int = 10) -> list[Sequence[Any]]:
    n = len(items)
    return [items[n * i // parts : n * (i + 1) // parts] for i in range(parts)]


def run_stream(
    engine: str,
    make: Callable[[], Any],
    items: Sequence[Any],
    expected: Callable[[int], list[tuple[Any, ...]]],
    opts: Options,
) -> Cell:
    """Time ``make()``'s runner over ``items`` (median of repeats) in tenths."""
    cell = Cell(engine, events=len(items))
    totals: list[float] = []
    builds: list[float] = []
    drifts: list[float] = []
    spent = 0.0
    decisions: list[tuple[Any, ...]] = []
    for _ in range(opts.repeat):
        gc.collect()
        t0 = clock()
        tenths: list[float] = []
        try:
            runner = make()
            # The build's objects (10,000 productions are ~100 MB of them) would make the
            # collector's next full collection fall in the timed events: one walk of the
            # whole network, a build cost. Collected here, as part of the build.
            gc.collect()
            builds.append(clock() - t0)
            for chunk in _chunks(items):
                t = clock()
                runner.feed(chunk)
                tenths.append(clock() - t)
        except Unsupported as exc:
            cell.note = str(exc)
            return cell
        except Exception as exc:  # an engine's crash is a result, not the end of the run
            cell.note = crashed(exc, sum(len(c) for c in _chunks(items)[: len(tenths)]))
            return cell
        totals.append(sum(tenths))
        if tenths[0] > 0:
            drifts.append(tenths[-1] / tenths[0])
        decisions = runner.decisions
        del runner
        spent += totals[-1] + builds[-1]
        if spent > opts.budget_s and len(totals) < opts.repeat:
            cell.note = (
                f"{len(totals)} of {opts.repeat} repeats (time budget {opts.budget_s:.0f} s)"
            )
            break
    cell.seconds = statistics.median(totals)
    cell.build_s = statistics.median(builds)
    cell.drift = statistics.median(drifts) if drifts else None
    want = expected(len(items))
    cell.check = (
        "ok"
        if sorted(decisions) == sorted(want)
        else (f"WRONG: {len(decisions)} decisions, expected {len(want)}")
    )
    return cell


def crashed(exc: BaseException, done: int | None = None) -> str:
    where = "" if done is None else f" after {done:,} events"
    text = " ".join(str(exc).split())[:160]
    return f"crashed{where}: {type(exc).__name__}: {text}"


# -- formatting -------------------------------------------------------------------------------


def fmt(x: float | None, digits: int = 0, suffix: str = "") -> str:
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}{suffix}"
    return f"{x:,.{digits}f}{suffix}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def engine_name(engine: str, mod: ModuleType | str) -> str:
    return str(getattr(mod, "NAME", engine)) if not isinstance(mod, str) else engine


def stream_table(cells: Sequence[Cell], names: dict[str, str]) -> str:
    """Rows: engine, events, events/s, us/event, streamrules/peer, drift, build, check, note."""
    sr = next((c for c in cells if c.engine == SR), None)
    rows = []
    for c in cells:
        rows.append([
            names.get(c.engine, c.engine),
            fmt(c.events) if c.seconds is not None else "-",
            fmt(c.rate),
            fmt(c.us_per_event, 1),
            "" if c.engine == SR else ratio(sr.rate if sr else None, c.rate),
            fmt(c.drift, 2),
            fmt(c.build_s, 2, " s"),
            c.check,
            c.note,
        ])  # fmt: skip
    return table(
        ["engine", "events", "events/s", "us/event", "streamrules/peer (speed)",
         "drift (last/first tenth)", "build", "decisions", "note"],
        rows,
    )  # fmt: skip


# -- the workloads ----------------------------------------------------------------------------


def _sizes(opts: Options) -> dict[str, int]:
    if opts.quick:
        return {"orders": 3_000, "joins": 3_000, "scaling": 2_000}
    return {"orders": 20_000, "joins": 20_000, "scaling": 20_000}


# Slow peers get fewer events so that a run stays within minutes; rates are per event.
_CAPS = {
    ("joins", "experta"): 2_000,
}


def _cap(workload: str, engine: str, n: int, opts: Options) -> tuple[int, str]:
    cap = _CAPS.get((workload, engine))
    if cap is None or opts.full or cap >= n:
        return n, ""
    return cap, f"{cap:,} events (slow; --full for all)"


def bench_orders(mods: dict[str, ModuleType | str], opts: Options) -> list[Cell]:
    n = _sizes(opts)["orders"]
    items = workloads.orders(n)
    plain: Any = importlib.import_module(MODULES["plain"])

    def expected(k: int) -> list[tuple[Any, ...]]:
        r = plain.orders()
        r.feed(items[:k])
        return list(r.decisions)

    cells = []
    for engine in opts.engines:
        mod = mods[engine]
        if isinstance(mod, str):
            cells.append(Cell(engine, note=mod))
            continue
        k, note = _cap("orders", engine, n, opts)
        cell = run_stream(engine, mod.orders, items[:k], expected, opts)
        cell.note = "; ".join(x for x in (note, cell.note, getattr(mod, "NOTE", "")) if x)
        cells.append(cell)
        opts.out(f"  orders: {engine_name(engine, mod)}: {fmt(cell.rate)} events/s {cell.check}")
    return cells


def bench_joins(mods: dict[str, ModuleType | str], opts: Options) -> list[Cell]:
    n = _sizes(opts)["joins"]
    ops = workloads.join_stream(n)
    customers = workloads.customers()
    plain: Any = importlib.import_module(MODULES["plain"])

    def expected(k: int) -> list[tuple[Any, ...]]:
        r = plain.joins(customers)
        r.feed(ops[:k])
        return list(r.decisions)

    cells = []
    for engine in opts.engines:
        mod = mods[engine]
        if isinstance(mod, str):
            cells.append(Cell(engine, note=mod))
            continue
        k, note = _cap("joins", engine, len(ops), opts)
        cell = run_stream(engine, partial(mod.joins, customers), ops[:k], expected, opts)
        cell.note = "; ".join(x for x in (note, cell.note) if x)
        cells.append(cell)
        opts.out(f"  joins: {engine_name(engine, mod)}: {fmt(cell.rate)} events/s {cell.check}")
    return cells


def scaling_sizes(opts: Options) -> tuple[int, ...]:
    return (10, 100, 1000) if opts.quick else (10, 100, 1000, 10000)


def _scaling_limit(engine: str, rules: int, opts: Options) -> str:
    """Why an engine is not run at this R (empty: run it)."""
    if engine == "experta" and rules > 1000 and not opts.full:
        return "skipped: linear alpha network, about 16 ms/event at R=1000 (--full runs it)"
    if engine == "pyrete" and rules > 1000 and not opts.full:
        return "skipped: about 1 ms/event at R=1000 and growing linearly (--full runs it)"
    return ""


def bench_scaling(mods: dict[str, ModuleType | str], opts: Options) -> dict[int, list[Cell]]:
    """The repeats take turns across the sizes (each engine at R=10, 100, ..., then again):
    the target is a ratio of two sizes, and on a shared machine a busy spell would
    otherwise fall on one size's repeats. Each figure is the median of its repeats, at
    least 5 of them (as for Manners: the ratio is a target, and it is memory-bound)."""
    n = _sizes(opts)["scaling"]
    plain: Any = importlib.import_module(MODULES["plain"])
    sizes = scaling_sizes(opts)
    streams = {rules: workloads.scaling_events(n, rules) for rules in sizes}
    once = replace(opts, repeat=1)
    repeats = max(opts.repeat, 5)
    runs: dict[tuple[int, str], list[Cell]] = {}
    fixed: dict[tuple[int, str], Cell] = {}  # cells not run: not installed, skipped, crashed
    for _ in range(repeats):
        for rules in sizes:
            items = streams[rules]

            def expected(k: int, rules: int = rules, items: Any = items) -> list[tuple[Any, ...]]:
                r = plain.scaling(rules)
                r.feed(items[:k])
                return list(r.decisions)

            for engine in opts.engines:
                key = (rules, engine)
                mod = mods[engine]
                if key in fixed:
                    continue
                if isinstance(mod, str):
                    fixed[key] = Cell(engine, note=mod)
                    continue
                why = _scaling_limit(engine, rules, opts)
                if why:
                    fixed[key] = Cell(engine, note=why)
                    continue
                done = runs.setdefault(key, [])
                if sum((c.seconds or 0.0) + (c.build_s or 0.0) for c in done) > opts.budget_s:
                    continue  # a slow engine: fewer repeats (the note says so)
                k = n
                if engine == "experta" and rules >= 100 and not opts.full:
                    k = min(n, 500)
                cell = run_stream(engine, partial(mod.scaling, rules), items[:k], expected, once)
                if cell.seconds is None:  # it could not run: that is its result
                    fixed[key] = cell
                    continue
                if k < n:
                    cell.note = "; ".join(x for x in (f"{k} events (slow)", cell.note) if x)
                done.append(cell)
    out: dict[int, list[Cell]] = {}
    for rules in sizes:
        cells = []
        for engine in opts.engines:
            key = (rules, engine)
            cell = fixed.get(key) or _median_cell(engine, runs.get(key, []), repeats)
            cells.append(cell)
            opts.out(
                f"  scaling R={rules}: {engine_name(engine, mods[engine])}: "
                f"{fmt(cell.us_per_event, 1)} us/event {cell.check} {cell.note}"
            )
        out[rules] = cells
    return out


def _median_cell(engine: str, runs: list[Cell], repeat: int) -> Cell:
    """One cell from single runs: medians of their times, the first wrong check if any."""
    if not runs:
        return Cell(engine, note="not run")
    cell = Cell(engine, events=runs[0].events, note=runs[0].note)
    cell.seconds = statistics.median(c.seconds for c in runs if c.seconds is not None)
    cell.build_s = statistics.median(c.build_s for c in runs if c.build_s is not None)
    drifts = [c.drift for c in runs if c.drift is not None]
    cell.drift = statistics.median(drifts) if drifts else None
    cell.check = next((c.check for c in runs if c.check != "ok"), "ok")
    if len(runs) < repeat:
        cell.note = "; ".join(
            x for x in (cell.note, f"{len(runs)} of {repeat} repeats (time budget)") if x
        )
    return cell


def manners_sizes(opts: Options) -> tuple[int, ...]:
    return (16, 32) if opts.quick else (16, 32, 64)


def bench_manners(mods: dict[str, ModuleType | str], opts: Options) -> dict[int, list[Cell]]:
    """Each size's repeats take turns across the engines (A B A B ...), so a busy spell of
    a shared machine falls on all of them alike rather than on one engine's repeats; at
    least 5 repeats (a run is short, and the ratio is a target)."""
    out: dict[int, list[Cell]] = {}
    for n in manners_sizes(opts):
        guests = workloads.manners_guests(n)
        cells: dict[str, Cell] = {}
        times: dict[str, list[float]] = {}
        for engine in opts.engines:
            mod = mods[engine]
            cell = cells[engine] = Cell(engine)
            times[engine] = []
            if isinstance(mod, str):
                cell.note = mod
            elif engine == "experta" and n > 16 and not opts.full:
                cell.note = "skipped: about 20 s at 32 and 800 s at 64 guests (--full runs it)"
        repeats = max(opts.repeat, 5)
        for rep in range(repeats):
            for engine in opts.engines:
                mod = mods[engine]
                cell = cells[engine]
                if isinstance(mod, str) or cell.note:
                    continue
                if engine == "experta" and rep > 0:
                    continue  # one run: it is slow
                gc.collect()
                try:
                    m = mod.manners(guests, n)
                    gc.collect()  # as in run_stream: the build's collection is not timed
                    t = clock()
                    fired = m.run()
                    times[engine].append(clock() - t)
                except Unsupported as exc:
                    cell.note = str(exc)
                    continue
                except Exception as exc:  # an engine's crash is a result
                    cell.note = crashed(exc)
                    continue
                ok = workloads.check_seating(guests, m.seating(), n)
                cell.extra["firings"] = fired
                cell.check = "valid seating" if ok else "WRONG: no valid seating"
        for engine in opts.engines:
            cell = cells[engine]
            ts = times[engine]
            if ts:
                cell.seconds = statistics.median(ts)
                if len(ts) < repeats:
                    cell.note = f"{len(ts)} run (slow)"
                opts.out(
                    f"  manners {n}: {engine_name(engine, mods[engine])}: "
                    f"{fmt(cell.seconds, 3)} s, {cell.extra.get('firings')} firings, {cell.check}"
                )
        out[n] = [cells[e] for e in opts.engines]
    return out
