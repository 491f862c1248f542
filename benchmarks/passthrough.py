"""The Kafka ceiling of the service benchmark: a passthrough without rules (not a test).

``python -m benchmarks.passthrough --bootstrap-servers B --input T1,T2 --sink S --group G``
is what ``streamrules run`` would be without decoding, merging and rules: an aiokafka
consumer-group member configured as the service's (``read_committed``, no auto-commit,
``max_poll_records`` = the batch size) that, per batch of at most ``--batch-size`` records,
produces one small orjson value per record to ``--sink`` (producer as the service's:
``acks=all``, idempotent, ``linger_ms=5``), waits for every acknowledgement and then
commits the batch's offsets; with ``--transactional`` the records and the offsets go in one
transaction per batch instead, as ``run --exactly-once`` does. It exits after
``--stop-when-idle`` seconds without a record and prints ``{"records": N}``.

``benchmarks.service`` runs it next to ``streamrules run`` on the same topics.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as KafkaTP


async def passthrough(
    bootstrap: str,
    inputs: list[str],
    sink: str,
    group: str,
    *,
    batch_size: int,
    transactional: bool,
    idle_s: float,
) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=f"{group}-consumer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch_size,
    )
    extra: dict[str, Any] = {"transactional_id": f"{group}-txn"} if transactional else {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=f"{group}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        **extra,
    )
    await consumer.start()
    await producer.start()
    consumer.subscribe(inputs)
    loop = asyncio.get_running_loop()
    records = 0
    last = loop.time()
    try:
        while loop.time() - last < idle_s:
            batches = await consumer.getmany(timeout_ms=200, max_records=batch_size)
            if not any(batches.values()):
                continue
            last = loop.time()
            offsets = {tp: msgs[-1].offset + 1 for tp, msgs in batches.items() if msgs}
            if transactional:
                await producer.begin_transaction()
            futures = []
            for tp, msgs in batches.items():
                for m in msgs:
                    value = orjson.dumps({"t": tp.topic, "p": tp.partition, "o": m.offset})
                    futures.append(await producer.send(sink, value, key=m.key))
                    records += 1
            await asyncio.gather(*futures)
            if transactional:
                await producer.send_offsets_to_transaction(offsets, group)
                await producer.commit_transaction()
            else:
                await consumer.commit(dict[KafkaTP, int](offsets))
    finally:
        await producer.stop()
        await consumer.stop()
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.passthrough", description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--input", required=True, help="input topics, comma-separated")
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--transactional", action="store_true")
    parser.add_argument("--stop-when-idle", type=float, default=3.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # aiokafka's coordinator chatter
    n = asyncio.run(
        passthrough(
            args.bootstrap_servers,
            args.input.split(","),
            args.sink,
            args.group,
            batch_size=args.batch_size,
            transactional=args.transactional,
            idle_s=args.stop_when_idle,
        )
    )
    print(orjson.dumps({"records": n}).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
