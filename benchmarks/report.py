"""Benchmark report (outside the processing flow): the tables, the ratios and the
targets (PASS/MISS) of a run, as Markdown that reads well in a terminal too."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from benchmarks.harness import SR, Cell, fmt, ratio, table, verdict

PEER_PACKAGES = (
    "streamrules",
    "clipspy",
    "durable-rules",
    "experta",
    "py_rete",
    "frozendict",
    "pyinstrument",
)


def machine() -> str:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for ln in fh:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for p in PEER_PACKAGES:
        try:
            versions.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            versions.append(f"{p} (not installed)")
    return (
        f"- machine: {os.cpu_count()} CPUs (nproc), {cpu}, "
        f"{platform.system()} {platform.release()}\n"
        f"- Python {sys.version.split()[0]} ({platform.python_implementation()})\n"
        f"- packages: {', '.join(versions)}"
    )


def _get(cells: Sequence[Cell], engine: str) -> Cell | None:
    return next((c for c in cells if c.engine == engine and c.seconds is not None), None)


def _rate(c: Cell | None) -> float | None:
    return c.rate if c is not None else None


def targets_orders(cells: Sequence[Cell]) -> list[list[str]]:
    sr, clips, experta = _get(cells, SR), _get(cells, "clips"), _get(cells, "experta")
    rows = []
    ok = None if not (sr and clips) else bool(sr.rate and clips.rate and sr.rate >= clips.rate)
    rows.append(
        [
            "(a) orders: streamrules >= CLIPS",
            ratio(_rate(sr), _rate(clips)),
            verdict(ok),
        ]
    )
    ok = (
        None
        if not (sr and experta)
        else bool(sr.rate and experta.rate and sr.rate >= 5 * experta.rate)
    )
    rows.append(
        [
            "(a) orders: streamrules >= 5x experta",
            ratio(_rate(sr), _rate(experta)),
            verdict(ok),
        ]
    )
    return rows


def targets_joins(cells: Sequence[Cell]) -> list[list[str]]:
    sr, clips = _get(cells, SR), _get(cells, "clips")
    ok = (
        None if not (sr and clips) else bool(sr.rate and clips.rate and sr.rate >= 0.5 * clips.rate)
    )
    return [
        [
            "(b) joins: streamrules >= 0.5x CLIPS",
            ratio(_rate(sr), _rate(clips)),
            verdict(ok),
        ]
    ]


def targets_scaling(by_r: dict[int, list[Cell]]) -> list[list[str]]:
    lo, hi = min(by_r), max(by_r)
    a, b = _get(by_r[lo], SR), _get(by_r[hi], SR)
    if not (a and b and a.us_per_event and b.us_per_event):
        return [[f"(c) scaling: streamrules at R={hi:,} within 1.5x of R={lo}", "-", "-"]]
    r = b.us_per_event / a.us_per_event
    return [
        [
            f"(c) scaling: streamrules us/event at R={hi:,} within 1.5x of R={lo}",
            f"{r:.2f}x",
            verdict(r <= 1.5),
        ]
    ]


def targets_manners(by_n: dict[int, list[Cell]]) -> list[list[str]]:
    n = max(by_n)
    sr, clips = _get(by_n[n], SR), _get(by_n[n], "clips")
    if not (sr and clips and sr.seconds and clips.seconds):
        return [[f"(d) Manners {n}: streamrules within 5x of CLIPS", "-", "-"]]
    r = sr.seconds / clips.seconds
    return [
        [
            f"(d) Manners {n}: streamrules time within 5x of CLIPS",
            f"{r:.1f}x CLIPS' time",
            verdict(r <= 5),
        ]
    ]


def scaling_table(by_r: dict[int, list[Cell]], names: dict[str, str]) -> str:
    engines = [c.engine for c in next(iter(by_r.values()))]
    headers = (
        ["engine"]
        + [f"R={r:,} us/event" for r in by_r]
        + [f"R={r:,} build" for r in by_r]
        + ["streamrules/peer at largest R run", "drift at largest R run", "notes"]
    )
    rows = []
    for e in engines:
        cells = {r: next(c for c in by_r[r] if c.engine == e) for r in by_r}
        last = max((r for r in by_r if cells[r].seconds is not None), default=None)
        sr_last = _get(by_r[last], SR) if last else None
        rat = (
            ""
            if e == SR or last is None
            else ratio(cells[last].us_per_event, sr_last.us_per_event if sr_last else None)
            + f" (R={last:,})"
        )
        by_note: dict[str, list[str]] = {}
        for r, c in cells.items():
            if c.note:
                by_note.setdefault(c.note, []).append(f"R={r:,}")
        notes = "; ".join(f"{', '.join(rs)}: {note}" for note, rs in by_note.items())
        wrong = [f"R={r:,}: {c.check}" for r, c in cells.items() if c.check and c.check != "ok"]
        rows.append(
            [names.get(e, e)]
            + [fmt(cells[r].us_per_event, 1) for r in by_r]
            + [fmt(cells[r].build_s, 2, " s") for r in by_r]
            + [rat, fmt(cells[last].drift, 2) if last else "-"]
            + ["; ".join([*wrong, notes]).strip("; ")]
        )
    return (
        table(headers, rows)
        + "\n\nstreamrules/peer is the peer's time per event over streamrules' (above 1: "
        "streamrules faster). Every run's decisions were checked against plain Python "
        "(notes say when not)."
    )


def manners_table(by_n: dict[int, list[Cell]], names: dict[str, str]) -> str:
    engines = [c.engine for c in next(iter(by_n.values()))]
    headers = (
        ["engine"]
        + [f"{n} guests, s" for n in by_n]
        + ["firings"]
        + ["streamrules/peer (peer time / streamrules time)", "notes"]
    )
    rows = []
    for e in engines:
        cells = {n: next(c for c in by_n[n] if c.engine == e) for n in by_n}
        firings = "/".join(str(cells[n].extra.get("firings", "-")) for n in by_n)
        rats = []
        for n in by_n:
            sr = _get(by_n[n], SR)
            mine = cells[n].seconds
            if e != SR and sr is not None and sr.seconds and mine:
                rats.append(f"{n}: {mine / sr.seconds:.3f}x")
        checks = {c.check for c in cells.values() if c.check}
        notes = "; ".join(
            sorted({c.note for c in cells.values() if c.note} | (checks - {"valid seating"}))
        )
        rows.append(
            [names.get(e, e)]
            + [fmt(cells[n].seconds, 3) for n in by_n]
            + [firings, ", ".join(rats), notes]
        )
    return (
        table(headers, rows)
        + "\n\nEvery finished run's seating was checked (all guests, neighbours of opposite "
        "sex sharing a hobby); the same firing counts mean the same search."
    )
