"""Restart and rebalance figures of the Kafka service (a benchmark script, not a test).

``python -m benchmarks.restart`` starts a private local broker (or uses
``--bootstrap-servers``), produces 7 days of retained input ending now (about 100,000
orders and their incidents, record timestamps = event time, as ``produce`` writes them),
lets one ``run`` work it off, and then measures, with the real CLI in separate processes:

1. a restart: time from starting ``run`` to the first *new* decision (an incident opened
   and resolved with 55 s of downtime, produced right after the start, makes an
   ``error_budget_burn``), and the records the rebuild re-read; once with the default
   horizons (orders re-read from an hour back) and once with ``--orders-horizon-ms``
   at 30 days, the way every partition was re-read before horizons per topic;
2. a rebalance: two more instances join the running one; the time from their start to
   the first new decision, and what each re-read.

Figures go to standard output, one JSON object per line. It takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from benchmarks.live import _backlog, _topics, bench_kafka
from streamrules.codec import format_ms
from streamrules.config import Settings
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import KafkaProducerClient, follow
from tests.integration.test_service_live import Service
from tests.integration.test_service_support import topic_flags

_REREAD = re.compile(r"re-reading (\d+) records")
_THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


async def _produce_burn(bootstrap: str, topic: str, service: str) -> None:
    """An incident of ``service`` opened now and resolved 55 s later (within the future
    limit): 55 s of downtime in the hour (above the burn threshold of 51.84 s), an
    error_budget_burn at once. Less than the allowed lateness ahead, so that the next
    case's incident, opened at its own now, is not late."""
    now = datetime.now(UTC)
    opened = int(now.timestamp() * 1000)
    events = [
        {
            "type": "incident_opened",
            "incident_id": f"bench-{service}",
            "service": service,
            "severity": 1,
            "ts": format_ms(opened),
        },
        {
            "type": "incident_resolved",
            "incident_id": f"bench-{service}",
            "service": service,
            "ts": format_ms(opened + 55_000),
        },
    ]
    async with KafkaProducerClient(Settings(bootstrap_servers=bootstrap), linger_ms=0) as p:
        for e in events:
            fut = await p.send(OutRecord(topic, service.encode(), orjson.dumps(e)))
            await fut


async def _time_to_decision(
    bootstrap: str,
    names: dict[str, str],
    start: Callable[[], list[Service]],
    timeout: float = 600,
    wait_for: Service | None = None,
) -> tuple[float, list[Service]]:
    """Start the service(s) with ``start()``, produce the incident pair at once (or once
    ``wait_for`` logged that its partitions were revoked), and wait for its decision:
    seconds from the start."""
    service = f"svc-{uuid.uuid4().hex[:6]}"
    settings = Settings(bootstrap_servers=bootstrap, client_id="bench-restart")
    got: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        async for r in follow(settings, names["decisions"]):
            if orjson.loads(r.value)["key"] == service:
                got.set_result(None)
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(3)  # the follower's position is the topic's end before anything new
    t0 = time.monotonic()
    services = start()
    if wait_for is not None:  # the rebalance under way: the incident meets it
        await asyncio.to_thread(wait_for.wait_for_log, "partitions revoked: bench", 600)
    await _produce_burn(bootstrap, names["incidents"], service)
    await asyncio.wait_for(got, timeout)
    elapsed = time.monotonic() - t0
    watcher.cancel()
    return elapsed, services


def _reread(service: Service) -> int | None:
    """Records re-read by the service's last rebuild."""
    found = None
    for rec in service.lines():
        m = _REREAD.search(str(rec.get("message")))
        if m:
            found = int(m.group(1))
    return found


def _starter(tmp: Path, flags: list[str]) -> Callable[[], list[Service]]:
    return lambda: [Service(tmp, flags)]


def _stop(services: list[Service]) -> None:
    for s in services:
        s.proc.terminate()
        s.wait(120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.restart", description=__doc__)
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args(argv)
    with bench_kafka(args.bootstrap_servers) as (bootstrap, tmp):
        names = _topics(bootstrap)
        n = _backlog(bootstrap, tmp, names, args.days)
        flags = [*topic_flags(bootstrap, names), "--group-id", f"g-{names['orders']}"]
        t0 = time.monotonic()
        Service(tmp, [*flags, "--stop-when-idle", "6"]).wait(1800)
        print(
            orjson.dumps(
                {"retained_records": n, "first_run_s": round(time.monotonic() - t0 - 6, 1)}
            ).decode(),
            flush=True,
        )
        for label, extra in (
            ("restart, horizons per topic (now)", []),
            (
                "restart, 30 days of orders (before)",
                ["--orders-horizon-ms", str(_THIRTY_DAYS_MS)],
            ),
        ):
            secs, services = asyncio.run(
                _time_to_decision(bootstrap, names, _starter(tmp, [*flags, *extra]))
            )
            print(
                orjson.dumps(
                    {
                        "case": label,
                        "to_first_decision_s": round(secs, 1),
                        "reread": _reread(services[0]),
                    }
                ).decode(),
                flush=True,
            )
            _stop(services)
        first = Service(tmp, flags)
        first.wait_for_log("rebuilding working memory", timeout=600)
        time.sleep(10)
        secs, services = asyncio.run(
            _time_to_decision(
                bootstrap,
                names,
                lambda: [Service(tmp, flags), Service(tmp, flags)],
                wait_for=first,
            )
        )
        print(
            orjson.dumps(
                {
                    "case": "rebalance, 1 -> 3 instances",
                    "to_first_decision_s": round(secs, 1),
                    "reread": [_reread(s) for s in (first, *services)],
                }
            ).decode(),
            flush=True,
        )
        _stop([first, *services])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
