"""A seeded generator of realistic, messy input streams for the oracle tests.

Orders (some big, some on Fridays), incidents of a few services (bursts that make storms,
long payments outages, acknowledgements before and after deadlines, reopenings),
duplicates, times in several zones, disorder within the allowed lateness, late events and
malformed records.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import orjson

from streamrules.codec import Record

MIN = 60_000
HOUR = 60 * MIN
SERVICES = ("payments", "search", "checkout")
ZONES = (
    UTC,
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
)
START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday


def ts_text(ms: int, rng: random.Random) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(rng.choice(ZONES))
    if ms % 1000:
        return dt.isoformat(timespec="milliseconds")
    return dt.isoformat()


def generate(
    seed: int,
    *,
    days: float = 1.0,
    orders_per_hour: float = 40,
    incidents_per_hour: float = 2,
    malformed_ratio: float = 0.01,
    late_ratio: float = 0.01,
    start: datetime = START,
) -> list[Record]:
    rng = random.Random(seed)
    t0 = int(start.timestamp() * 1000)
    end = t0 + int(days * 24 * HOUR)
    events: list[tuple[int, int, str, dict[str, object]]] = []  # ts, tiebreak, topic, event
    n = 0

    def add(ts: int, topic: str, event: dict[str, object]) -> None:
        nonlocal n
        n += 1
        events.append((ts, n, topic, event))

    # Orders: a Poisson stream.
    t = t0
    while True:
        t += int(rng.expovariate(orders_per_hour / HOUR)) + 1
        if t >= end:
            break
        items = [
            {
                "sku": f"S-{rng.randrange(50)}",
                "qty": rng.choice((1, 1, 1, 2, 3)),
                "price": rng.choice((5, 12.5, 49.99, 120, 260.25)),
            }
            for _ in range(rng.choice((0, 1, 1, 2, 3)))
        ]
        add(
            t,
            "orders",
            {
                "type": "order_placed",
                "order_id": f"o-{rng.randrange(10**6)}",
                "customer_id": f"c-{rng.randrange(30)}",
                "logged_in": rng.random() < 0.5,
                "items": items,
                "extra": "ignored",
            },
        )
    # Incidents: Poisson openings, some in bursts.
    t = t0
    k = 0
    while True:
        t += int(rng.expovariate(incidents_per_hour / HOUR)) + 1
        if t >= end:
            break
        service = rng.choice(SERVICES)
        burst = rng.choice((1, 1, 1, 2, 3, 4, 5))
        bt = t
        for _ in range(burst):
            k += 1
            iid = f"i-{k}" if rng.random() > 0.05 else f"i-{rng.randrange(1, k + 1)}"
            sev = rng.choice((1, 1, 2, 2, 3, 4))
            add(
                bt,
                "incidents",
                {
                    "type": "incident_opened",
                    "incident_id": iid,
                    "service": service,
                    "severity": sev,
                },
            )
            if rng.random() < 0.6:
                # around the deadlines (5 and 15 minutes), sometimes exactly on them
                delay = rng.choice(
                    (
                        4 * MIN,
                        5 * MIN,
                        5 * MIN - 1,
                        14 * MIN,
                        15 * MIN,
                        20 * MIN,
                        rng.randrange(1, 30 * MIN),
                    )
                )
                add(
                    bt + delay,
                    "incidents",
                    {"type": "incident_acknowledged", "incident_id": iid, "service": service},
                )
            if rng.random() < 0.9:
                length = rng.choice(
                    (
                        rng.randrange(1000, 120_000),
                        rng.randrange(MIN, 90 * MIN),
                        rng.randrange(HOUR, 10 * HOUR),
                    )
                )
                add(
                    bt + length,
                    "incidents",
                    {"type": "incident_resolved", "incident_id": iid, "service": service},
                )
            if rng.random() < 0.05:
                add(
                    bt + rng.randrange(1, 20 * MIN),
                    "incidents",
                    {
                        "type": "incident_acknowledged",
                        "incident_id": f"ghost-{k}",
                        "service": service,
                    },
                )
            bt += rng.randrange(1, 12 * MIN)
    events.sort()
    out: list[tuple[str, dict[str, object], int]] = []
    for ts, _n, topic, event in events:
        out.append((topic, event, ts))
        if rng.random() < 0.03:  # a redelivery, shortly after
            out.append((topic, event, ts))
    # Disorder within the allowed lateness: swap neighbours closer than 50 s.
    for i in range(len(out) - 1):
        a, b = out[i], out[i + 1]
        if b[2] - a[2] < 50_000 and rng.random() < 0.2:
            out[i], out[i + 1] = b, a
    records: list[Record] = []
    offsets = {"orders": 0, "incidents": 0}
    for topic, event, ts in out:
        ev = dict(event) if isinstance(event, dict) else event
        assert isinstance(ev, dict)
        if rng.random() < late_ratio:
            ts -= rng.choice((61_000, 5 * MIN, 59_000))  # late, or just within lateness
        ev["ts"] = ts_text(ts, rng)
        value = orjson.dumps(ev)
        if rng.random() < malformed_ratio:
            value = rng.choice(
                (
                    b"{not json",
                    b"[]",
                    orjson.dumps({**ev, "type": "order_cancelled"}),
                    orjson.dumps({**ev, "ts": "2026-11-27 10:00:00"}),
                    orjson.dumps({k: v for k, v in ev.items() if k != "ts"}),
                )
            )
        key = str(ev.get("customer_id") or ev.get("service")).encode()
        records.append(Record(topic, 0, offsets[topic], key, value))
        offsets[topic] += 1
    return records
