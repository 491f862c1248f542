"""The two runtimes of `streamrules run` side by side (a benchmark script, not a test).

``python -m benchmarks.runtimes --bootstrap-servers HOST:PORT [--days 3.5]`` makes one
stream (``streamrules.generate``, 600 orders an hour: 3.5 days is about 54,000 records),
sends it with ``streamrules produce`` to fresh topics laid out as topics.toml says, then,
one process at a time, each runtime (``--runtime aiokafka``, ``--runtime faust``) in a
consumer group and to a decisions topic of its own:

1. **Throughput**: ``run --stop-when-idle 3`` on the whole stream, one worker, then two
   started together in one group (``--workers 1,2``); the decisions topic is polled every
   0.25 s: seconds from the start to the first and to the last decision, and records/s
   over each span (start-up and the group join are in the first, not the second), and the
   decisions published more than once (a rebalance when the second worker joins).
2. **Recovery**: ``run`` killed with -9 once 15,000 decisions are out, then started again:
   seconds from the restart to the first new decision (the killed member's session
   timeout, 10 s for both runtimes, is most of it), and the decisions published twice.

Needs the faust extra. The figures are wall-clock times on a shared machine: compare the
two runtimes of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from streamrules.config import Settings
from streamrules.generate import generate_events
from streamrules.topics import load_topics
from streamrules.transport import kafka_admin
from streamrules.transport.kafka import record_counts

RUNTIMES = ("aiokafka", "faust")


def _count(bootstrap: str, topic: str) -> int:
    counts = asyncio.run(record_counts(Settings(bootstrap_servers=bootstrap), [topic]))
    return counts[topic]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--days", type=float, default=3.5, help="days of generated events")
    parser.add_argument("--kill-at", type=int, default=15_000, help="decisions before kill -9")
    parser.add_argument("--workers", default="1,2", help="worker counts for the throughput runs")
    parser.add_argument("--no-recovery", action="store_true", help="throughput runs only")
    args = parser.parse_args(argv)
    bootstrap = args.bootstrap_servers
    work = Path(tempfile.mkdtemp(prefix="bench-runtimes-"))
    prefix = "bench-rt-" + uuid.uuid4().hex[:6]
    topics = load_topics()
    names = {n: f"{prefix}-{n}" for n in topics.names}
    specs = list(topics.renamed(names).topics)
    decisions = next(s for s in specs if s.name == names["decisions"])
    counts = [int(w) for w in args.workers.split(",")]
    kinds = [f"tp{w}" for w in counts] + ["kill"]
    outputs = {(r, k): f"{prefix}-decisions-{r}-{k}" for r in RUNTIMES for k in kinds}
    specs += [dataclasses.replace(decisions, name=t) for t in outputs.values()]
    asyncio.run(kafka_admin.create_topics(bootstrap, specs))
    items = list(generate_events(77, days=args.days, orders_per_hour=600))
    events = work / "events.jsonl"
    events.write_bytes(b"".join(v + b"\n" for _, _, v in items))
    inputs = [
        "--bootstrap-servers",
        bootstrap,
        "--orders-topic",
        names["orders"],
        "--incidents-topic",
        names["incidents"],
        "--dlq-topic",
        names["decisions.dlq"],
    ]
    cli = [sys.executable, "-m", "streamrules"]
    subprocess.run([*cli, "produce", str(events), *inputs], check=True, capture_output=True)
    print(f"records: {len(items)}", flush=True)

    def start(runtime: str, topic: str, group: str, *more: str) -> subprocess.Popen[bytes]:
        log = (work / f"{runtime}-{time.monotonic_ns()}.log").open("wb")
        flags = ["--runtime", runtime, "--decisions-topic", topic, "--group-id", group]
        return subprocess.Popen(
            [*cli, "run", *inputs, *flags, *more],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=work,
        )

    clean: dict[str, int] = {}
    for workers in counts:
        for runtime in RUNTIMES:
            topic = outputs[(runtime, f"tp{workers}")]
            group = f"g-{prefix}-{runtime}-tp{workers}"
            t0 = time.monotonic()
            procs = [start(runtime, topic, group, "--stop-when-idle", "3") for _ in range(workers)]
            first: float | None = None
            last, n = 0.0, 0
            while True:
                running = any(p.poll() is None for p in procs)
                c = _count(bootstrap, topic)
                now = time.monotonic() - t0
                if c and first is None:
                    first = now
                if c != n:
                    n, last = c, now
                if not running:
                    break
                time.sleep(0.25)
            clean.setdefault(runtime, n)
            assert first is not None, f"{runtime}: no decision"
            print(
                f"{runtime} x{workers}: {n} decisions ({n - clean[runtime]} more than one "
                f"worker's); first after {first:.1f} s, last after {last:.1f} s; "
                f"{len(items) / last:.0f} records/s from the start, "
                f"{len(items) / (last - first):.0f} records/s first to last decision",
                flush=True,
            )

    if args.no_recovery:
        print(f"logs in {work}", flush=True)
        return 0
    for runtime in RUNTIMES:
        topic = outputs[(runtime, "kill")]
        group = f"g-{prefix}-{runtime}-kill"
        proc = start(runtime, topic, group)
        while _count(bootstrap, topic) < args.kill_at:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = _count(bootstrap, topic)
        t0 = time.monotonic()
        proc = start(runtime, topic, group, "--stop-when-idle", "3")
        while _count(bootstrap, topic) <= before:
            time.sleep(0.05)
        first_new = time.monotonic() - t0
        proc.wait()
        total = _count(bootstrap, topic)
        print(
            f"{runtime} kill -9 at {before} decisions: first new decision {first_new:.1f} s "
            f"after the restart; {total - clean[runtime]} decisions published twice",
            flush=True,
        )
    print(f"logs in {work}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
