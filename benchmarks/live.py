"""Live-traffic figures of the Kafka service (a benchmark script, not a test).

``python -m benchmarks.live`` starts a private local broker (or uses
``--bootstrap-servers``) and measures, with the real CLI in separate processes:

1. a live feed (a producer process writing in event-time order while ``run`` runs, topics
   as topics.toml defines them, two orders and one incidents partition left empty) at
   800 / 5,000 / 20,000 events/s offered: late dead letters, and decisions lost or extra
   against ``streamrules replay`` of the producer's file;
2. a backlog of 100,000 records with ``run`` killed (-9) half-way and restarted:
   decisions published twice;
3. peak RSS of ``run`` working off a 200,000-record backlog.

It takes a few minutes. Figures go to standard output as a table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from streamrules.generate import generate_events
from streamrules.localkafka import (
    BrokerConfig,
    LocalKafka,
    free_port,
    run_sync,
    with_free_ports,
)
from streamrules.topics import load_topics
from streamrules.transport import kafka_admin
from tests.integration.test_service_live import (
    Service,
    count,
    finish_feed,
    live_items,
    published,
    start_feed,
)
from tests.integration.test_service_support import cli, produce_flags, replay, topic_flags


@contextlib.contextmanager
def bench_kafka(bootstrap: str | None, rtt_ms: float = 0.0) -> Iterator[tuple[str, Path]]:
    """A temporary directory and the broker to use: ``bootstrap``, or else a private
    local broker started in that directory (and stopped after); with ``rtt_ms``, behind a
    proxy that adds that round-trip time to every connection (``delay_proxy``)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if bootstrap is not None:
            if rtt_ms:
                raise SystemExit("--rtt-ms needs the private broker (no --bootstrap-servers)")
            yield bootstrap, tmp
            return
        config = with_free_ports(BrokerConfig(data_dir=tmp / "kafka"))
        proxy: subprocess.Popen[bytes] | None = None
        if rtt_ms:
            # The broker advertises the proxy: every client connection goes through it.
            port = free_port(config.host)
            listener = f"PLAINTEXT://{config.host}:{port}"
            config = dataclasses.replace(
                config, extra_properties={"advertised.listeners": listener}
            )
            proxy = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.delay_proxy",
                    "--listen",
                    str(port),
                    "--to",
                    f"{config.host}:{config.port}",
                    "--delay-ms",
                    str(rtt_ms / 2),
                ],
                cwd=Path(__file__).resolve().parent.parent,
            )
        broker = LocalKafka(config)
        try:
            broker.start()
            try:
                yield (f"{config.host}:{port}" if proxy else broker.bootstrap_servers), tmp
            finally:
                broker.stop()
        finally:
            if proxy is not None:
                proxy.kill()
                proxy.wait()


def _topics(bootstrap: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    names = {n: f"bench-{tag}-{n}" for n in load_topics().names}
    run_sync(kafka_admin.create_topics(bootstrap, list(load_topics().renamed(names).topics)))
    return names


def live(bootstrap: str, tmp: Path, rate: int, hours: float) -> dict[str, object]:
    names = _topics(bootstrap)
    items = live_items(41, names, hours=hours)
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{names['orders']}"]
    service = Service(tmp, [*flags, "--stop-when-idle", "6"])
    service.wait_for_log("rebuilding working memory")
    t0 = time.monotonic()
    finish_feed(start_feed(tmp, bootstrap, items, rate), timeout=900)
    fed_s = time.monotonic() - t0
    service.wait(900)
    want = {str(d["decision_id"]) for d in replay(tmp, [v for _, _, v in items])}
    got_ids, dead = published(bootstrap, names)
    got = set(got_ids)
    return {
        "rate": rate,
        "events": len(items),
        "achieved/s": round(len(items) / fed_s),
        "late": Counter(dead)["late_event"],
        "decisions": len(want),
        "lost": len(want - got),
        "extra": len(got - want),
    }


def _backlog(bootstrap: str, tmp: Path, names: dict[str, str], days: float) -> int:
    path = tmp / f"backlog-{uuid.uuid4().hex[:6]}.jsonl"
    # Ending now: `run` dead-letters events ahead of the wall clock (future_event).
    start = datetime.now(UTC) - timedelta(days=days)
    items = list(generate_events(42, start=start, days=days, orders_per_hour=600))
    path.write_bytes(b"".join(v + b"\n" for _, _, v in items))
    done = cli("produce", str(path), *produce_flags(bootstrap, names), timeout=900)
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
    return len(items)


def kill_backlog(bootstrap: str, tmp: Path) -> dict[str, object]:
    names = _topics(bootstrap)
    n = _backlog(bootstrap, tmp, names, 7)
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{names['orders']}"]
    service = Service(tmp, flags)
    while count(bootstrap, names["decisions"]) < n // 2:
        time.sleep(0.2)
    service.kill()
    Service(tmp, [*flags, "--stop-when-idle", "6"]).wait(900)
    ids, _ = published(bootstrap, names)
    return {"backlog": n, "decisions": len(set(ids)), "twice": len(ids) - len(set(ids))}


def peak_rss(bootstrap: str, tmp: Path) -> dict[str, object]:
    names = _topics(bootstrap)
    n = _backlog(bootstrap, tmp, names, 14)
    flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{names['orders']}"]
    service = Service(tmp, [*flags, "--stop-when-idle", "6"])
    # VmHWM of the process itself (a fork's rusage would count the parent's pages).
    peak = 0
    status = Path(f"/proc/{service.proc.pid}/status")
    while service.proc.poll() is None:
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        time.sleep(0.5)
    service.wait()
    return {"backlog": n, "peak_rss_mib": round(peak / 1024)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live", description=__doc__)
    parser.add_argument("--bootstrap-servers", default=None)
    args = parser.parse_args(argv)
    with bench_kafka(args.bootstrap_servers) as (bootstrap, tmp):
        for rate, hours in ((800, 6), (5000, 24), (20000, 48)):
            print(orjson.dumps(live(bootstrap, tmp, rate, hours)).decode(), flush=True)
        print(orjson.dumps(kill_backlog(bootstrap, tmp)).decode(), flush=True)
        print(orjson.dumps(peak_rss(bootstrap, tmp)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
