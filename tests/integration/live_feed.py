"""A live producer for the service's tests: a separate process that writes records to
the input topics at a steady rate while ``streamrules run`` is running.

``python -m tests.integration.live_feed FILE --bootstrap-servers B --rate N`` reads FILE,
one JSON array ``[topic, key, value]`` a line (key and value base64, key may be null), and
sends each record as it is (malformed ones too: validating is the processor's job),
stamped with its event time when it has one, at N records per second, waiting for every
acknowledgement at the end. It prints ``sent N`` and exits 0. ``write_items`` writes FILE.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from collections.abc import Iterable
from pathlib import Path

import orjson

from streamrules.codec import Decoder, Record
from streamrules.config import Settings
from streamrules.errors import DecodeError
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import KafkaProducerClient, wait_acked

Item = tuple[str, bytes | None, bytes]  # (real topic name, key, value)


def write_items(path: Path, items: Iterable[Item]) -> int:
    n = 0
    with path.open("wb") as out:
        for topic, key, value in items:
            k = None if key is None else base64.b64encode(key).decode()
            out.write(orjson.dumps([topic, k, base64.b64encode(value).decode()]) + b"\n")
            n += 1
    return n


def read_items(path: Path) -> list[Item]:
    items: list[Item] = []
    for line in path.read_bytes().splitlines():
        topic, k, v = orjson.loads(line)
        items.append((topic, None if k is None else base64.b64decode(k), base64.b64decode(v)))
    return items


async def feed(bootstrap: str, items: list[Item], rate: float) -> int:
    decoder = Decoder(None)
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future[object]] = []
    # No linger: a record goes out with the next request whatever its partition, so the
    # broker appends records in the order written. A linger holds each partition's batch
    # back on its own clock: records of one partition then reach the broker up to
    # linger.ms after later records of another, which at this feed's compressed event
    # time (hours a second) is minutes of event time, beyond the allowed lateness.
    async with KafkaProducerClient(Settings(bootstrap_servers=bootstrap), linger_ms=0) as producer:
        start = loop.time()
        for i, (topic, key, value) in enumerate(items):
            delay = start + i / rate - loop.time()
            if delay > 0.002:
                await asyncio.sleep(delay)
            try:
                ts: int | None = decoder.decode(Record(topic, 0, i, key, value)).ts_ms
            except DecodeError:
                ts = None
            pending.append(await producer.send(OutRecord(topic, key, value, (), ts)))
            if len(pending) >= 1000:
                await wait_acked(pending)
                pending.clear()
        await wait_acked(pending)
    return len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--rate", type=float, required=True, help="records per second")
    args = parser.parse_args(argv)
    sent = asyncio.run(feed(args.bootstrap_servers, read_items(args.file), args.rate))
    print(f"sent {sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
