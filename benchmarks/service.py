"""Throughput and latency of the whole Kafka service against the raw Kafka ceiling
(a benchmark script, not a test).

``python -m benchmarks.service`` starts a private local broker (or uses
``--bootstrap-servers``) and measures, each contender a process of its own, one after the
other on the same machine in one run:

1. **Throughput** on one pre-produced stream (``--records``, default 100,000, made by
   ``streamrules.generate`` and sent with ``streamrules produce``; topics as topics.toml
   defines them): the passthrough ceiling (``benchmarks.passthrough``: a plain aiokafka
   consumer producing one small orjson value per record, the service's batching, acks and
   commits), its transactional variant, then ``streamrules run`` at-least-once and
   exactly-once, each in its own consumer group with its own output topics. Records/s is
   the input records over the span of the broker's append times of the contender's
   output (its output topics use ``LogAppendTime``): the first batch's output to the
   last one, the same clock and the same method for all four; start-up and group joins
   are outside it; "middle 80%" is the same over the 10th to 90th percentile of the
   output's append times (``middle_rate``: without the end of the input). Ratios: ``run``
   at-least-once over the passthrough, exactly-once over the transactional passthrough.
   ``--repeat N`` runs the four N times, taking turns; ``--instances N`` adds ``run``
   at-least-once as N processes in one group (scale-out: the partitions shared), and
   ``--rtt-ms D`` puts the private broker behind a proxy adding D ms to every round trip
   (``delay_proxy``: a broker across a network).
2. **Live feeds** at fixed offered rates (``--rates``, default 1,000 / 5,000 / 20,000
   events/s for ``--live-seconds`` each; ``tests.integration.live_feed`` writes in
   event-time order while ``run`` runs): end-to-end latency p50/p99/max from the broker's
   append time of the input record that caused a decision (the first input in event-time
   order at or after the decision's ``event_time``: the event itself, or for a clock
   firing the event that moved the watermark past it) to the broker's append time of the
   decision (input and output topics with ``LogAppendTime`` here), CPU seconds per 10,000
   records (after start-up, from /proc/PID/stat) and peak RSS (VmHWM of the process).
3. ``--sustained [MIN]``: ``run`` on a feed of 5,000 events/s for MIN minutes (10), RSS
   and live facts printed every 30 s, with the RSS slope after the first minute.

Figures are printed as JSON lines, then a summary table.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import dataclasses
import itertools
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from benchmarks.live import bench_kafka
from streamrules.codec import Decoder, Record, parse_rfc3339
from streamrules.errors import DecodeError
from streamrules.generate import DEFAULT_START, generate_events
from streamrules.localkafka import run_sync
from streamrules.topics import load_topics
from streamrules.transport import kafka_admin
from streamrules.transport.kafka import ConsumedRecord
from tests.integration.live_feed import Item
from tests.integration.test_service_live import Service, finish_feed, live_items, start_feed
from tests.integration.test_service_support import (
    ROOT,
    clean_env,
    cli,
    produce_flags,
    read_topic,
    topic_flags,
)

_TICK = os.sysconf("SC_CLK_TCK")
_APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


# -- processes -----------------------------------------------------------------------
class Watch:
    """Samples a process's CPU time and memory from /proc until it exits (a thread).

    Peak RSS is the kernel's VmHWM of the process itself: ``getrusage`` of a child counts
    pages it shared with its parent at fork."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        self.pid = pid
        self.peak_kib = 0
        self.rss_kib = 0
        self.cpu_s = 0.0
        self._every = every_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                elif line.startswith("VmRSS:"):
                    self.rss_kib = int(line.split()[1])
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            self.cpu_s = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime

    def _loop(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self._every)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


# -- topics and streams --------------------------------------------------------------
def make_topics(bootstrap: str, tag: str, *, append_time: Sequence[str] = ()) -> dict[str, str]:
    """The topics of topics.toml under fresh names; ``append_time``: the logical topics
    whose records the broker stamps with its append time."""
    names = {n: f"bench-{tag}-{n}" for n in load_topics().names}
    specs = []
    for spec in load_topics().renamed(names).topics:
        logical = next(k for k, v in names.items() if v == spec.name)
        if logical in append_time:
            spec = dataclasses.replace(spec, configs={**spec.configs, **_APPEND_TIME})
        specs.append(spec)
    run_sync(kafka_admin.create_topics(bootstrap, specs))
    return names


def output_topics(bootstrap: str, names: dict[str, str], tag: str) -> dict[str, str]:
    """Fresh decisions and dead-letter topics (append-time stamped) next to ``names``'s
    inputs, for one contender."""
    mine = {"decisions": f"bench-{tag}-decisions", "decisions.dlq": f"bench-{tag}-decisions.dlq"}
    specs = [
        dataclasses.replace(spec, configs={**spec.configs, **_APPEND_TIME})
        for spec in load_topics().renamed(mine).topics
        if spec.name in mine.values()
    ]
    run_sync(kafka_admin.create_topics(bootstrap, specs))
    return {"orders": names["orders"], "incidents": names["incidents"], **mine}


def produce_stream(bootstrap: str, tmp: Path, names: dict[str, str], n: int) -> int:
    """``n`` generated records on the input topics, sent by ``streamrules produce``."""
    items = itertools.islice(generate_events(42, days=n / 10_000 + 1, orders_per_hour=600), n)
    path = tmp / f"stream-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_bytes(b"".join(v + b"\n" for _, _, v in items))
    done = cli("produce", str(path), *produce_flags(bootstrap, names), timeout=1800)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.decode()[-2000:])
    return sum(1 for _ in path.open("rb"))


def read_all(bootstrap: str, topic: str) -> list[ConsumedRecord]:
    return read_topic(bootstrap, topic, idle_s=3.0)


def _span_s(records: Sequence[ConsumedRecord]) -> float:
    stamps = [r.timestamp_ms for r in records]
    return (max(stamps) - min(stamps)) / 1000 if stamps else 0.0


def middle_rate(n: int, records: Sequence[ConsumedRecord]) -> int | None:
    """Input records per second over the middle 80% of the output (its 10th to its 90th
    percentile of broker append times): the steady rate, without the first batches and
    without the end of the input, where `run`'s event-time merge waits up to ``idle_ms``
    for each partition that runs dry (contract section 5), one after the other."""
    stamps = sorted(r.timestamp_ms for r in records)
    if len(stamps) < 10:
        return None
    lo, hi = stamps[len(stamps) // 10], stamps[(len(stamps) * 9) // 10]
    return round(0.8 * n / ((hi - lo) / 1000)) if hi > lo else None


# -- 1. throughput -------------------------------------------------------------------
def passthrough(
    bootstrap: str, names: dict[str, str], tag: str, n: int, *, transactional: bool
) -> dict[str, Any]:
    out = output_topics(bootstrap, names, tag)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.passthrough",
        "--bootstrap-servers",
        bootstrap,
        "--input",
        f"{names['orders']},{names['incidents']}",
        "--sink",
        out["decisions"],
        "--group",
        f"g-{tag}",
        "--stop-when-idle",
        "3",
    ]
    if transactional:
        cmd.append("--transactional")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE)
    watch = Watch(proc.pid)
    stdout, _ = proc.communicate(timeout=1800)
    watch.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"passthrough failed ({proc.returncode})")
    got = orjson.loads(stdout.splitlines()[-1])["records"]
    sink = read_all(bootstrap, out["decisions"])
    span = _span_s(sink)
    return {
        "contender": "passthrough" + (" (transactions)" if transactional else ""),
        "records": got,
        "out": len(sink),
        "records/s": round(n / span) if span else None,
        "middle 80% rec/s": middle_rate(n, sink),
        "cpu_s/10k": round(watch.cpu_s / n * 10_000, 3),
        "peak_rss_mib": round(watch.peak_kib / 1024),
    }


def service(
    bootstrap: str,
    tmp: Path,
    names: dict[str, str],
    tag: str,
    n: int,
    *,
    exactly_once: bool,
    extra: Sequence[str] = (),
    instances: int = 1,
) -> dict[str, Any]:
    out = output_topics(bootstrap, names, tag)
    flags = [*topic_flags(bootstrap, out), "--group-id", f"g-{tag}", "--stop-when-idle", "3"]
    if exactly_once:
        flags.append("--exactly-once")
    # Several instances: one group, started together, the partitions shared among them.
    svcs = [Service(tmp, [*flags, *extra]) for _ in range(instances)]
    watches = [Watch(svc.proc.pid) for svc in svcs]
    codes = [svc.wait(1800) for svc in svcs]
    for watch in watches:
        watch.stop()
    for svc, code in zip(svcs, codes, strict=True):
        if code != 0:
            raise RuntimeError(svc.tail())
    decisions = read_all(bootstrap, out["decisions"])
    dead = read_all(bootstrap, out["decisions.dlq"])
    span = _span_s([*decisions, *dead])
    return {
        "contender": "run "
        + ("exactly-once" if exactly_once else "at-least-once")
        + (f" x{instances}" if instances > 1 else ""),
        "records": n,
        "out": len(decisions) + len(dead),
        "records/s": round(n / span) if span else None,
        "middle 80% rec/s": middle_rate(n, [*decisions, *dead]),
        "cpu_s/10k": round(sum(w.cpu_s for w in watches) / n * 10_000, 3),
        "peak_rss_mib": round(max(w.peak_kib for w in watches) / 1024),
    }


def throughput(
    bootstrap: str, tmp: Path, n: int, repeat: int, extra: Sequence[str], instances: int = 1
) -> list[dict[str, Any]]:
    names = make_topics(bootstrap, uuid.uuid4().hex[:8])
    produced = produce_stream(bootstrap, tmp, names, n)
    print(f"# produced {produced} records on {names['orders']}, {names['incidents']}", flush=True)
    rows: list[dict[str, Any]] = []
    for i in range(repeat):
        kinds = ["pass", "pass-txn", "run", "run-eos"] + (["run-n"] if instances > 1 else [])
        for kind in kinds:
            tag = f"{kind}-{uuid.uuid4().hex[:6]}"
            if kind.startswith("pass"):
                row = passthrough(bootstrap, names, tag, produced, transactional=kind == "pass-txn")
            else:
                row = service(
                    bootstrap,
                    tmp,
                    names,
                    tag,
                    produced,
                    exactly_once=kind == "run-eos",
                    extra=extra,
                    instances=instances if kind == "run-n" else 1,
                )
            row["round"] = i + 1
            print(orjson.dumps(row).decode(), flush=True)
            rows.append(row)
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round: run at-least-once over the passthrough and exactly-once over the
    transactional passthrough, in records/s and (less disturbed by the neighbours of a
    shared machine) in CPU per record."""
    out = []
    for r in sorted({row["round"] for row in rows}):
        by = {row["contender"]: row for row in rows if row["round"] == r}
        pairs = (
            ("at-least-once", by["run at-least-once"], by["passthrough"]),
            ("exactly-once", by["run exactly-once"], by["passthrough (transactions)"]),
        )
        row: dict[str, Any] = {"round": r}
        for name, run, ceiling in pairs:
            rate, top = run["records/s"] or 0, ceiling["records/s"] or 0
            row[f"{name} records/s ratio"] = round(rate / top, 2) if top else None
            rate, top = run["middle 80% rec/s"] or 0, ceiling["middle 80% rec/s"] or 0
            row[f"{name} middle 80% ratio"] = round(rate / top, 2) if top else None
            row[f"{name} CPU ratio"] = round(ceiling["cpu_s/10k"] / run["cpu_s/10k"], 2)
        out.append(row)
    return out


# -- 2. live feeds -------------------------------------------------------------------
def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def latencies_ms(
    inputs: Sequence[ConsumedRecord], decisions: Sequence[ConsumedRecord]
) -> list[int]:
    """Per decision: its append time minus the append time of the input that caused it (the
    first input, in event-time order, whose ``ts`` is at or after the decision's time)."""
    decoder = Decoder(None)
    caused: list[tuple[int, int]] = []
    for r in inputs:
        try:
            ts = decoder.decode(Record("", 0, 0, r.key, r.value)).ts_ms
        except DecodeError:
            continue
        caused.append((ts, r.timestamp_ms))
    caused.sort()
    stamps = [ts for ts, _ in caused]
    out = []
    for d in decisions:
        at = parse_rfc3339(orjson.loads(d.value)["event_time"])[1]
        i = bisect.bisect_left(stamps, at)
        if i < len(caused):
            out.append(d.timestamp_ms - caused[i][1])
    return sorted(out)


def live(
    bootstrap: str, tmp: Path, rate: int, seconds: float, extra: Sequence[str]
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    names = make_topics(
        bootstrap, tag, append_time=("orders", "incidents", "decisions", "decisions.dlq")
    )
    # live_items leaves 2 of 6 order and 1 of 3 incident partitions empty: ~420 records an
    # hour of event time at 600 orders an hour.
    items = live_items(43, names, hours=rate * seconds / 420)
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{tag}", "--stop-when-idle", "4"]
    svc = Service(tmp, [*flags, *extra])
    watch = Watch(svc.proc.pid)
    svc.wait_for_log("rebuilding working memory")
    watch.sample()
    cpu0 = watch.cpu_s
    t0 = time.monotonic()
    finish_feed(start_feed(tmp, bootstrap, items, rate), timeout=1800)
    fed_s = time.monotonic() - t0
    code = svc.wait(1800)
    watch.stop()
    if code != 0:
        raise RuntimeError(svc.tail())
    inputs = read_all(bootstrap, names["orders"]) + read_all(bootstrap, names["incidents"])
    decisions = read_all(bootstrap, names["decisions"])
    lat = latencies_ms(inputs, decisions)
    return {
        "offered/s": rate,
        "idle_ms": next((a.split("=", 1)[1] for a in extra if a.startswith("--idle-ms=")), 500),
        "events": len(items),
        "achieved/s": round(len(items) / fed_s),
        "decisions": len(decisions),
        "p50_ms": _percentile(lat, 0.5),
        "p99_ms": _percentile(lat, 0.99),
        "max_ms": lat[-1] if lat else None,
        "cpu_s/10k": round((watch.cpu_s - cpu0) / len(items) * 10_000, 3),
        "peak_rss_mib": round(watch.peak_kib / 1024),
    }


# -- 3. sustained --------------------------------------------------------------------
def _chunks(names: dict[str, str], size: int) -> Iterator[list[Item]]:
    """An endless generated stream in chunks of about ``size`` records: consecutive
    stretches of event time, each generated on its own (the generator plans a whole
    stretch up front), orders at a steady rate, in the generator's delivery order."""
    days = size / 14_600  # ~14,600 records a simulated day at 600 orders an hour
    start = DEFAULT_START
    for k in itertools.count():
        items = generate_events(
            44 + k, start=start, days=days, orders_per_hour=600, order_bursts=False
        )
        chunk = [(names[t], key, v) for t, key, v in items]
        start += timedelta(days=days)
        yield chunk


def _facts_live(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("streamrules_facts_live"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def sustained(
    bootstrap: str, tmp: Path, minutes: float, rate: int, extra: Sequence[str]
) -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:8]
    names = make_topics(bootstrap, tag)
    port = 19000 + os.getpid() % 1000
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{tag}", "--metrics-port", str(port)]
    svc = Service(tmp, [*flags, *extra])
    watch = Watch(svc.proc.pid, every_s=1.0)
    svc.wait_for_log("rebuilding working memory")
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    next_print = t0 + 30
    fed = 0
    chunk_s = 30
    chunks = _chunks(names, rate * chunk_s)
    chunk = next(chunks, None)
    while chunk is not None and time.monotonic() - t0 < minutes * 60:
        feed = start_feed(tmp, bootstrap, chunk, rate)
        sent = len(chunk)
        chunk = next(chunks, None)  # the next one is made while this one is fed
        while feed.poll() is None:
            time.sleep(0.5)
            if time.monotonic() >= next_print:
                next_print += 30
                row = {
                    "minute": round((time.monotonic() - t0) / 60, 1),
                    "fed": fed,
                    "rss_mib": round(watch.rss_kib / 1024, 1),
                    "facts_live": _facts_live(port),
                    "cpu_s": watch.cpu_s,
                }
                rows.append(row)
                print(orjson.dumps(row).decode(), flush=True)
        finish_feed(feed)
        fed += sent
    svc.proc.terminate()
    svc.wait(120)
    watch.stop()
    later = [r for r in rows if r["minute"] >= 1.0]
    if len(later) >= 2:
        xs = [r["minute"] for r in later]
        ys = [r["rss_mib"] for r in later]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        print(f"# RSS slope after the first minute: {slope * 10:+.2f} MiB per 10 minutes")
    return rows


# -- report --------------------------------------------------------------------------
def _table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service", description=__doc__)
    parser.add_argument("--bootstrap-servers", default=None, help="else a private local broker")
    parser.add_argument(
        "--rtt-ms",
        type=float,
        default=0.0,
        help="the private broker behind a proxy adding this round-trip time (a remote broker)",
    )
    parser.add_argument("--records", type=int, default=100_000, help="pre-produced stream")
    parser.add_argument("--repeat", type=int, default=1, help="throughput rounds")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="also run N at-least-once instances in one group (scale-out) on the stream",
    )
    parser.add_argument("--rates", default="1000,5000,20000", help="live feeds, events/s")
    parser.add_argument("--live-seconds", type=float, default=20.0)
    parser.add_argument(
        "--idle0-rate",
        type=int,
        default=5000,
        help="one more live feed at this rate with --idle-ms=0 (0: none)",
    )
    parser.add_argument("--skip", default="", help="comma-separated: throughput, live")
    parser.add_argument(
        "--sustained", type=float, nargs="?", const=10.0, default=None, metavar="MIN"
    )
    parser.add_argument(
        "--run-arg", action="append", default=[], help="an extra flag for streamrules run"
    )
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    print(f"# streamrules service benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    with bench_kafka(args.bootstrap_servers, args.rtt_ms) as (bootstrap, tmp):
        tput: list[dict[str, Any]] = []
        if "throughput" not in skip:
            tput = throughput(
                bootstrap, tmp, args.records, args.repeat, args.run_arg, args.instances
            )
        lives = []
        if "live" not in skip:
            for rate in (int(r) for r in args.rates.split(",") if r):
                row = live(bootstrap, tmp, rate, args.live_seconds, args.run_arg)
                print(orjson.dumps(row).decode(), flush=True)
                lives.append(row)
            if args.idle0_rate:
                # The same feed without the merge's wait for empty partitions: what
                # processing and Kafka cost, apart from the event-time order's wait.
                extra = [*args.run_arg, "--idle-ms=0"]
                row = live(bootstrap, tmp, args.idle0_rate, args.live_seconds, extra)
                print(orjson.dumps(row).decode(), flush=True)
                lives.append(row)
        if args.sustained:
            sustained(bootstrap, tmp, args.sustained, 5000, args.run_arg)
        if tput:
            print("\n" + _table(tput) + "\n\n" + _table(ratios(tput)))
        if lives:
            print("\n" + _table(lives))
    return 0


if __name__ == "__main__":
    sys.exit(main())
