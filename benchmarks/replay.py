"""Replay benchmark (the whole flow, no Kafka): a generated stream of orders and incidents
at a steady event-time rate, replayed by ``streamrules replay``'s own loop with both packs.

The order rate is steady by default (the generator's order bursts off, its incident
bursts kept, which the SRE rules need): the issue asks for "a steady event-time rate".
The stream is written to a JSONL file first (as ``python -m streamrules.generate`` would)
and then replayed from it as the command does: each line decoded, processed and its
decisions written as JSONL (to /dev/null). Only the CPU time of the replay loop is
counted. Prints, per simulated hour: events, live facts, RSS and events/s; then the
targets: live facts bounded by lifetime x rate, RSS not growing after the first simulated
hour, and at least 20,000 events/s on one core.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt, table, verdict

HOUR_MS = 3_600_000
ORDER_LIFETIME_H = 1.0
TARGET_RATE = 20_000
# Live facts against the orders of the last hour plus the live incidents: 5% for the
# orders that arrive out of order around the hour mark.
FACTS_SLACK = 1.05
RSS_SLACK = 1.05
# Lines replayed between two looks at the clock (about 100 simulated seconds at the
# default rate): an hour's figures are taken at the first chunk that ends past its mark.
CHUNK_LINES = 1_000


def rss_bytes() -> int:
    """Resident set size now (VmRSS), in bytes."""
    try:
        with open("/proc/self/status") as fh:
            for ln in fh:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class ReplayResult:
    events: int = 0
    seconds: float = 0.0
    decisions: int = 0
    dead_letters: int = 0
    hours: list[dict[str, Any]] = field(default_factory=list)
    max_facts: int = 0
    nominal: float = 0.0
    wall: float = 0.0  # wall time of the replay loop
    steady: bool = True  # orders without the generator's bursts

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def write_stream(
    path: Path, events: int, *, orders_per_hour: float, seed: int, steady: bool
) -> int:
    """The generated stream as JSONL (what ``python -m streamrules.generate`` writes), cut
    at ``events`` records; returns the number of order records."""
    from streamrules.generate import DEFAULT_START, generate_events

    days = events / orders_per_hour / 24 * 1.05  # a little more: incidents are extra records
    orders = 0
    with open(path, "wb") as fh:
        for i, (topic, _key, value) in enumerate(
            generate_events(
                seed,
                start=DEFAULT_START,
                days=days,
                orders_per_hour=orders_per_hour,
                order_bursts=not steady,
            )
        ):
            if i >= events:
                break
            fh.write(value + b"\n")
            orders += topic == "orders"
    return orders


def run(
    events: int,
    *,
    orders_per_hour: float,
    seed: int = 11,
    steady: bool = True,
    out: Any = print,
    stream: Path | None = None,
) -> ReplayResult:
    """Replay ``events`` generated records through ``streamrules replay``'s own code (the
    ``_Replay`` loop: decode, pipeline, decisions written as JSONL to /dev/null), from a
    file written first (``stream``, or a temporary one), in chunks of lines so that the
    figures of each simulated hour can be taken between them."""
    with tempfile.TemporaryDirectory(prefix="streamrules-soak-") as tmp:
        path = stream or Path(tmp) / "stream.jsonl"
        t0 = time.perf_counter()
        write_stream(path, events, orders_per_hour=orders_per_hour, seed=seed, steady=steady)
        out(
            f"  replay: {events:,} records, {orders_per_hour:,.0f} orders per simulated hour "
            f"(seed {seed}{', steady: no order bursts, incident bursts kept' if steady else ''}), "
            f"packs: discounts + sre; stream written in {time.perf_counter() - t0:,.1f} s"
        )
        res = ReplayResult(nominal=orders_per_hour * ORDER_LIFETIME_H, steady=steady)
        return replay_file(path, res, out)


def replay_file(path: Path, res: ReplayResult, out: Any = print) -> ReplayResult:
    """Replay a JSONL stream of the generator's (it starts at its ``DEFAULT_START``) with
    both packs, filling ``res`` with the per-hour figures."""
    from streamrules.commands.replay import _Replay
    from streamrules.generate import DEFAULT_START
    from streamrules.pipeline import Pipeline, freeze_startup_objects, thaw_startup_objects

    pipe = Pipeline()
    start_ms = int(DEFAULT_START.timestamp() * 1000)
    next_hour = start_ms + HOUR_MS
    hour_events = hour_orders = 0
    hour_time = 0.0
    perf = time.process_time  # CPU time: "on one core", and immune to busy neighbours
    wall0 = time.perf_counter()
    freeze_startup_objects()  # as `streamrules replay` does
    out(f"  RSS at start {rss_bytes() / 2**20:,.0f} MiB")

    def hour_line(label: str) -> None:
        stats = pipe.stats()
        row = {
            "hour": label,
            "events": res.events,
            "facts_live": stats["facts_live"],
            "rss_mib": rss_bytes() / 2**20,
            "rate": hour_events / hour_time if hour_time else 0.0,
            "orders_in_hour": hour_orders,
            "incidents_live": stats["incidents_live"],
        }
        res.hours.append(row)
        res.max_facts = max(res.max_facts, stats["facts_live"])
        out(
            f"    hour {label:>4}: {res.events:>10,} events, {hour_orders:>7,} orders in the hour, "
            f"{stats['facts_live']:>8,} facts live, "
            f"RSS {row['rss_mib']:>7,.0f} MiB, {row['rate']:>8,.0f} events/s"
        )

    with open(path, "rb") as source, open(os.devnull, "wb") as sink:
        replay = _Replay(pipe, sink, sink)
        while True:
            chunk = list(islice(source, CHUNK_LINES))
            if not chunk:
                break
            orders = sum(1 for line in chunk if b'"order_placed"' in line)
            t = perf()
            replay.feed(chunk)
            dt = perf() - t
            res.seconds += dt
            hour_time += dt
            hour_events += len(chunk)
            hour_orders += orders
            res.events += len(chunk)
            wm = pipe.watermark_ms
            if wm is not None and wm >= next_hour:
                hour_line(str((next_hour - start_ms) // HOUR_MS))
                next_hour += HOUR_MS
                hour_events = hour_orders = 0
                hour_time = 0.0
        sink.flush()
    hour_line("end")
    stats = pipe.stats()
    res.decisions = int(stats["decisions"])
    res.dead_letters = int(stats["dead_letters"])
    res.wall = time.perf_counter() - wall0
    thaw_startup_objects()  # the benchmarks that follow get the collector as it was
    return res


def targets(res: ReplayResult) -> list[list[str]]:
    rows = []
    hourly = [h for h in res.hours if h["hour"] != "end"]
    # Orders live one hour: the live facts at an hour mark should be the orders of the
    # hour before (lifetime x the rate actually seen, bursts included) plus the incidents.
    worst = max(
        (h["facts_live"] / max(1, h["orders_in_hour"] + h["incidents_live"]) for h in hourly),
        default=None,
    )
    rows.append([
        "(e) replay: live facts bounded by lifetime x rate",
        "fewer than 1 simulated hour: use more --events" if worst is None else
        f"max {res.max_facts:,} live; at most {worst:.3f}x (orders of the last hour + live "
        f"incidents) at an hour mark; nominal 1 h x rate = {res.nominal:,.0f}",
        verdict(None if worst is None else worst <= FACTS_SLACK),
    ])  # fmt: skip
    if len(hourly) >= 2:
        base = hourly[0]["rss_mib"]
        last = res.hours[-1]["rss_mib"]
        peak = max(h["rss_mib"] for h in res.hours[1:])
        rows.append([
            "(e) replay: RSS not growing after the first simulated hour",
            f"hour 1: {base:,.0f} MiB, later peak {peak:,.0f} MiB, end {last:,.0f} MiB",
            verdict(peak <= base * RSS_SLACK),
        ])  # fmt: skip
        mid = res.hours[len(res.hours) // 2]
        rows.append([
            "(e) replay: RSS flat over the second half of the run (no leak)",
            f"hour {mid['hour']}: {mid['rss_mib']:,.0f} MiB, end {last:,.0f} MiB",
            verdict(last <= mid["rss_mib"] * RSS_SLACK),
        ])  # fmt: skip
    else:
        rows.append([
            "(e) replay: RSS not growing after the first simulated hour",
            "fewer than 2 simulated hours: use more --events",
            "-",
        ])  # fmt: skip
    rows.append([
        "(e) replay: >= 20,000 events/s on one core",
        f"{res.rate:,.0f} events/s",
        verdict(res.rate >= TARGET_RATE),
    ])  # fmt: skip
    return rows


def hours_table(res: ReplayResult) -> str:
    return table(
        ["simulated hour", "events", "orders in the hour", "facts live", "RSS MiB", "events/s"],
        [
            [
                str(h["hour"]),
                fmt(h["events"]),
                fmt(h["orders_in_hour"]),
                fmt(h["facts_live"]),
                fmt(h["rss_mib"]),
                fmt(h["rate"]),
            ]
            for h in res.hours
        ],
    )


def summary(res: ReplayResult) -> str:
    stream = (
        "a steady order rate (the generator's 4x order bursts off; incident bursts, "
        "storms and outages kept)"
        if res.steady
        else "the generator's order bursts (4x for 5-15 min)"
    )
    return (
        f"Stream: {stream}. "
        f"{res.events:,} records in {res.seconds:,.1f} s of processing (CPU time of "
        f"the replay loop; {res.wall:,.1f} s wall): "
        f"{res.rate:,.0f} events/s; "
        f"{res.decisions:,} decisions, {res.dead_letters:,} dead letters"
    )
