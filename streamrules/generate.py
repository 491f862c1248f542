"""Generated streams: a seeded, deterministic source of realistic orders and incidents.

Feeds the demo, the tests and the benchmarks (docs/interfaces.md section 6). It stands in
front of the whole flow, as a producer would: ``(topic, key, value)`` records in delivery
order. What it produces, so that every rule of the bundled packs has something to do:

- orders at a steady rate (exponential gaps) with bursts, a logged-in share, one to four
  lines with small and large prices (every discount case, totals >= 500), over days that
  include a Friday when the span does;
- incidents on several services, payments the most often, severities 1 to 4; some
  acknowledged in time, some late or never (escalations); storms (3 or more opened within
  30 minutes on one service); payments outages of severity 1 or 2 with big orders placed
  during them; severity 1-2 downtimes above 51.84 s (hourly burn) and, over a few days,
  above the 2592 s budget on payments;
- producer noise: duplicate records, acknowledgements and resolutions of unknown
  incidents, a little disorder (delivery delays of up to 20 s, within the default 60 s
  lateness), a few late events (delayed 2 to 10 minutes), and, when ``malformed_ratio``
  is above 0, malformed records (bad JSON, not UTF-8, wrong types, unknown types, bad
  times, missing fields, the wrong topic).

Only ``random.Random(seed)`` decides anything: the same arguments give the same bytes.
``python -m streamrules.generate --days 3 --seed 7 > events.jsonl`` writes JSONL.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from streamrules.codec.timefmt import format_ms, parse_rfc3339

__all__ = [
    "DEFAULT_START",
    "LATEST_THURSDAY",
    "SERVICES",
    "generate_events",
    "latest_thursday",
    "main",
    "recent_start",
    "write_jsonl",
]

# A Thursday: three days from here cover a Friday.
DEFAULT_START = datetime(2026, 11, 26, tzinfo=UTC)
SERVICES: tuple[str, ...] = ("payments", "checkout", "search", "inventory", "auth", "shipping")
_SERVICE_WEIGHTS = (4, 2, 2, 1, 1, 1)
_SEVERITY_WEIGHTS = (2, 3, 3, 2)
_HOUR = 3_600_000
_MIN = 60_000
_SEC = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# `--start latest-thursday`: the stream is over by now and within the topics' retention.
LATEST_THURSDAY = "latest-thursday"

Item = tuple[str, bytes | None, bytes]


def generate_events(
    seed: int,
    *,
    start: datetime = DEFAULT_START,
    days: float = 3.0,
    orders_per_hour: float = 600.0,
    incident_rate: float = 0.5,
    malformed_ratio: float = 0.0,
    order_bursts: bool = True,
) -> Iterator[Item]:
    """Yield ``(topic, key, value)`` records in delivery order (near event-time order).

    ``incident_rate`` is the mean number of ordinary incidents opened per hour over all
    services, on top of one payments outage and one storm per simulated day.
    ``malformed_ratio`` is the share of order records replaced by malformed ones.
    ``order_bursts=False`` keeps orders at the steady rate (incident bursts, storms and
    outages stay): a constant number of live orders, for soak runs.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if days <= 0 or orders_per_hour < 0 or incident_rate < 0 or not 0 <= malformed_ratio < 1:
        raise ValueError("days must be > 0; rates >= 0; 0 <= malformed_ratio < 1")
    gen = _Generator(
        random.Random(seed), start, days, orders_per_hour, incident_rate, malformed_ratio
    )
    gen.order_bursts = order_bursts
    return gen.run()


def write_jsonl(out: IO[bytes] | str | Path, items: Iterable[Item]) -> int:
    """Write each record's value as one JSONL line (for ``replay``/``produce``); returns
    how many lines were written. The topic is dropped: replay derives it from ``type``."""
    if isinstance(out, str | Path):
        with open(out, "wb") as fh:
            return write_jsonl(fh, items)
    n = 0
    batch: list[bytes] = []
    for _topic, _key, value in items:
        batch.append(value)
        n += 1
        if len(batch) >= 4096:
            out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        out.write(b"\n".join(batch) + b"\n")
    return n


def _ts_text(ms: int, offset_min: int = 0) -> str:
    """RFC 3339 text of epoch millis, in UTC (``Z``) or at a zone offset in minutes."""
    if not offset_min:
        return format_ms(ms)
    local = _EPOCH + timedelta(milliseconds=ms + offset_min * _MIN)
    sign = "-" if offset_min < 0 else "+"
    zone = f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    return f"{local:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}{zone}"


class _Generator:
    def __init__(
        self,
        rng: random.Random,
        start: datetime,
        days: float,
        orders_per_hour: float,
        incident_rate: float,
        malformed_ratio: float,
    ) -> None:
        self.rng = rng
        self.start_ms = (start.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)
        self.end_ms = self.start_ms + int(days * 24 * _HOUR)
        self.orders_per_hour = orders_per_hour
        self.incident_rate = incident_rate
        self.malformed_ratio = malformed_ratio
        self.n_orders = 0
        self.n_incidents = 0
        self.order_bursts = True
        self.customers = max(50, int(orders_per_hour * 2))

    # -- orders -----------------------------------------------------------------------------

    def order(self, ts_ms: int, big: bool = False) -> dict[str, Any]:
        # The hot path of generation: random() and gauss() directly, several times
        # cheaper than randrange() and lognormvariate().
        rng = self.rng
        rand = rng.random
        self.n_orders += 1
        lines = 1 + int(rand() ** 2 * 4)  # mostly one or two lines
        items = []
        for i in range(lines):
            qty = 1 if rand() < 0.6 else 2 + int(rand() * 3)
            price = round(math.exp(rng.gauss(2.8, 0.9)), 2)  # lognormal, median ~16
            items.append({"sku": f"SKU-{int(rand() * 2000)}", "qty": qty, "price": price})
            if big and i == 0:
                items[0]["price"] = round(rng.uniform(500, 1500), 2)
        if not big and rng.random() < 0.01:  # an occasional big basket outside outages
            items[0]["price"] = round(rng.uniform(300, 1200), 2)
            items[0]["qty"] = rng.randint(1, 2)
        offset = 0 if rand() < 0.95 else rng.choice((60, 120, -300, 330))
        return {
            "type": "order_placed",
            "order_id": f"o-{self.n_orders}",
            "customer_id": f"c-{int(rand() * self.customers)}",
            "logged_in": rand() < 0.55,
            "items": items,
            "ts": _ts_text(ts_ms, offset),
        }

    def order_times(self) -> Iterator[int]:
        """Order event times: a Poisson process whose rate jumps 4x during bursts."""
        if self.orders_per_hour <= 0:
            return
        rng = self.rng
        base = self.orders_per_hour / _HOUR
        t = float(self.start_ms)
        hour_start = self.start_ms
        burst = (0, 0)
        while True:
            if t >= hour_start + _HOUR:
                hour_start += _HOUR * int((t - hour_start) // _HOUR)
                if rng.random() < 0.15:
                    b0 = hour_start + rng.randrange(50 * _MIN)
                    burst = (b0, b0 + rng.randint(5, 15) * _MIN)
            # Without bursts the draws above still happen: the rest of the stream keeps
            # its shape, only the order rate stays flat.
            burst_rate = base * 4 if self.order_bursts else base
            rate = burst_rate if burst[0] <= t < burst[1] else base
            t += rng.expovariate(rate)
            if t >= self.end_ms:
                return
            yield int(t)

    # -- incidents --------------------------------------------------------------------------

    def incident(
        self,
        out: list[tuple[int, dict[str, Any]]],
        opened: int,
        service: str,
        severity: int,
        *,
        ack_after: int | None,
        resolve_after: int | None,
    ) -> dict[str, Any]:
        """Schedule one incident's events; returns its ``incident_opened`` event."""
        self.n_incidents += 1
        iid = f"i-{self.n_incidents}"
        base = {"incident_id": iid, "service": service}
        opening = {"type": "incident_opened", **base, "severity": severity}
        out.append((opened, opening))
        if ack_after is not None:
            out.append((opened + ack_after, {"type": "incident_acknowledged", **base}))
        if resolve_after is not None:
            out.append((opened + resolve_after, {"type": "incident_resolved", **base}))
        return opening

    def ordinary_incident(self, out: list[tuple[int, dict[str, Any]]], opened: int) -> None:
        rng = self.rng
        service = rng.choices(SERVICES, _SERVICE_WEIGHTS)[0]
        severity = rng.choices((1, 2, 3, 4), _SEVERITY_WEIGHTS)[0]
        deadline = {1: 5 * _MIN, 2: 15 * _MIN}.get(severity, 30 * _MIN)
        roll = rng.random()
        if roll < 0.6:  # acknowledged in time
            ack: int | None = rng.randint(20 * _SEC, deadline - 10 * _SEC)
        elif roll < 0.85:  # acknowledged late: an escalation for severity 1 and 2
            ack = deadline + rng.randint(30 * _SEC, 10 * _MIN)
        else:
            ack = None
        downtime = int(rng.lognormvariate(math.log(6 * _MIN), 0.8))
        # Some minor incidents are never resolved (their facts live 7 days); a forgotten
        # severity 1 or 2 would hold every big payments order for a week.
        forgotten = severity >= 3 and rng.random() < 0.15
        resolve = None if forgotten else max(downtime, (ack or 0) + 30 * _SEC)
        self.incident(out, opened, service, severity, ack_after=ack, resolve_after=resolve)

    def schedule(self) -> list[tuple[int, dict[str, Any]]]:
        """Incident events and the orders tied to them, unsorted."""
        rng = self.rng
        out: list[tuple[int, dict[str, Any]]] = []
        # Ordinary incidents: a Poisson process over the whole span.
        if self.incident_rate > 0:
            t = self.start_ms + rng.expovariate(self.incident_rate / _HOUR)
            while t < self.end_ms:
                self.ordinary_incident(out, int(t))
                t += rng.expovariate(self.incident_rate / _HOUR)
        for day_start in range(self.start_ms, self.end_ms, 24 * _HOUR):
            day_len = min(24 * _HOUR, self.end_ms - day_start)
            # A payments outage: severity 1 or 2, 12 to 35 minutes of downtime (well over
            # 51.84 s an hour; two or three of them exhaust the 2592 s budget), half of them
            # acknowledged too late, with big orders placed while it is open.
            opened = day_start + rng.randrange(max(1, day_len - 40 * _MIN))
            severity = rng.choice((1, 2))
            downtime = rng.randint(12 * _MIN, 35 * _MIN)
            late_ack = rng.random() < 0.5
            ack = (16 if late_ack else 3) * _MIN + rng.randrange(_MIN)
            self.incident(out, opened, "payments", severity, ack_after=ack, resolve_after=downtime)
            for _ in range(rng.randint(2, 4)):
                at = opened + rng.randrange(_MIN, downtime - _MIN)
                if at < self.end_ms:
                    out.append((at, self.order(at, big=True)))
            # A storm: 3 to 5 incidents on one service within 20 minutes.
            service = rng.choice(SERVICES[1:])
            storm_at = day_start + rng.randrange(max(1, day_len - 25 * _MIN))
            for k in range(rng.randint(3, 5)):
                at = storm_at + k * rng.randint(2 * _MIN, 5 * _MIN)
                opening = self.incident(
                    out,
                    at,
                    service,
                    rng.choice((2, 3, 3, 4)),
                    ack_after=rng.randint(_MIN, 10 * _MIN),
                    resolve_after=rng.randint(10 * _MIN, 60 * _MIN),
                )
                if k == 0:  # a producer retry of the same record, a little later
                    out.append((at + rng.randint(_SEC, 30 * _SEC), opening))
            # Acknowledgements and resolutions of incidents nobody opened.
            for kind in ("incident_acknowledged", "incident_resolved"):
                at = day_start + rng.randrange(day_len)
                ghost = f"i-unknown-{rng.randrange(10**6)}"
                service = rng.choice(SERVICES)
                out.append((at, {"type": kind, "incident_id": ghost, "service": service}))
        return [(t, e) for t, e in out if t < self.end_ms]

    # -- the stream -------------------------------------------------------------------------

    def encode(self, ts_ms: int, event: dict[str, Any]) -> Item:
        if event["type"] == "order_placed":
            return ("orders", event["customer_id"].encode(), orjson.dumps(event))
        if "ts" not in event:
            event["ts"] = _ts_text(ts_ms)
        return ("incidents", event["service"].encode(), orjson.dumps(event))

    def malformed(self, ts_ms: int) -> Item:
        rng = self.rng
        event = self.order(ts_ms)
        key = event["customer_id"].encode()
        good = orjson.dumps(event)
        kind = rng.randrange(10)
        if kind == 0:
            return ("orders", key, good[: len(good) // 2])  # truncated JSON
        if kind == 1:
            return ("orders", key, b"\xff\xfe" + good)  # not UTF-8
        if kind == 2:
            return ("orders", key, orjson.dumps([event]))  # not an object
        if kind == 3:
            event["type"] = "order_cancelled"  # unknown type
        elif kind == 4:
            del event["type"]
        elif kind == 5:
            event["items"][0]["qty"] = str(event["items"][0]["qty"])
        elif kind == 6:
            event["items"][0]["price"] = -1
        elif kind == 7:
            event["ts"] = event["ts"][:19]  # no zone
        elif kind == 8:
            event["ts"] = "2026-02-30T10:00:00Z"
        else:
            return ("incidents", key, good)  # valid, but on the wrong topic
        return ("orders", key, orjson.dumps(event))

    def run(self) -> Iterator[Item]:
        rng = self.rng
        scheduled = sorted(self.schedule(), key=lambda te: te[0])
        pending: list[tuple[int, int, Item]] = []  # (delivery time, sequence, record)
        seq = 0
        nxt = 0

        def push(ts_ms: int, item: Item) -> None:
            nonlocal seq
            roll = rng.random()
            if roll < 0.85:
                delay = 0
            elif roll < 0.9995:
                delay = rng.randrange(20 * _SEC)  # disorder within the lateness
            else:
                delay = rng.randint(2 * _MIN, 10 * _MIN)  # late
            seq += 1
            heapq.heappush(pending, (ts_ms + delay, seq, item))
            if rng.random() < 0.003:  # the producer retried: the same record again
                seq += 1
                heapq.heappush(pending, (ts_ms + delay + rng.randrange(5 * _SEC), seq, item))

        for t in self.order_times():
            while nxt < len(scheduled) and scheduled[nxt][0] <= t:
                push(scheduled[nxt][0], self.encode(*scheduled[nxt]))
                nxt += 1
            if self.malformed_ratio and rng.random() < self.malformed_ratio:
                push(t, self.malformed(t))
            else:
                push(t, self.encode(t, self.order(t)))
            while pending and pending[0][0] <= t:
                yield heapq.heappop(pending)[2]
        for ts_ms, event in scheduled[nxt:]:
            push(ts_ms, self.encode(ts_ms, event))
        while pending:
            yield heapq.heappop(pending)[2]


def latest_thursday(now: datetime) -> datetime:
    """00:00 UTC of the latest Thursday at or before ``now``.

    Kafka deletes records by their timestamps (event times here): a fixed start date would
    see a produced stream deleted by the 7-day retention some day after it was chosen.
    """
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=(day.weekday() - 3) % 7)


def recent_start(now: datetime, days: float) -> datetime:
    """``--start latest-thursday``: the latest Thursday from which ``days`` end by ``now``.

    00:00 UTC of a Thursday (the span covers a Friday for ``days`` >= 2), at most 7 days
    before ``now - days``: the stream's last records are in the past (a service that
    dead-letters events far ahead of its clock takes them all) and less than 7 days old,
    within the input topics' retention, which deletes a log segment by its newest record.
    """
    return latest_thursday(now - timedelta(days=days))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streamrules.generate",
        description="Write a seeded, deterministic stream of orders and incidents as JSONL.",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument(
        "--start",
        default=DEFAULT_START.strftime("%Y-%m-%dT%H:%M:%SZ"),
        help=f"RFC 3339 start time, or {LATEST_THURSDAY} (00:00 UTC of the latest Thursday "
        "from which the stream is over by now; within the topics' 7-day retention) "
        "(default: %(default)s, a Thursday)",
    )
    parser.add_argument("--orders-per-hour", type=float, default=600.0)
    parser.add_argument("--incident-rate", type=float, default=0.5, help="incidents per hour")
    parser.add_argument("--malformed-ratio", type=float, default=0.0)
    parser.add_argument(
        "--steady",
        action="store_true",
        help="no order bursts: orders at a steady rate (incident bursts stay)",
    )
    parser.add_argument("--out", "-o", default="-", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    try:
        if args.start == LATEST_THURSDAY:
            start = recent_start(datetime.now(UTC), args.days)
        else:
            start, _ = parse_rfc3339(args.start)
        items = generate_events(
            args.seed,
            start=start,
            days=args.days,
            orders_per_hour=args.orders_per_hour,
            incident_rate=args.incident_rate,
            malformed_ratio=args.malformed_ratio,
            order_bursts=not args.steady,
        )
        end = start + timedelta(days=args.days)
        if end > datetime.now(UTC) + timedelta(hours=1):
            print(
                f"python -m streamrules.generate: warning: the stream ends at {end.isoformat()}, "
                "more than an hour after now: `streamrules run` dead-letters events that far "
                "ahead of the wall clock as future_event (max_future_ms)",
                file=sys.stderr,
            )
        if args.out == "-":
            write_jsonl(sys.stdout.buffer, items)
            sys.stdout.buffer.flush()
        else:
            write_jsonl(args.out, items)
    except ValueError as exc:
        print(f"python -m streamrules.generate: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
