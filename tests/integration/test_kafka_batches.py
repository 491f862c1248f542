"""The service's output path on a real broker: one delivery sent as batches per partition.

``_send_all`` fills one batch per partition itself (aiokafka's batch API) instead of one
``send`` per record: the records must land where ``producer.send`` would have put them
(the default partitioner), each partition's in the order given, each once, also when a
partition's records fill several batches and when one record is larger than a batch.
"""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from streamrules.config import Settings
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import (
    _BATCH_BYTES,
    KafkaTransport,
    _Partitions,
    _send_all,
    follow,
)


async def _read(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes, int]]:
    settings = Settings(bootstrap_servers=bootstrap, client_id="test-batches")
    return [
        (r.partition, r.key, r.value, r.timestamp_ms)
        async for r in follow(settings, topic, from_beginning=True, idle_timeout_s=3.0)
    ]


@pytest.mark.timeout(180)
async def test_a_delivery_lands_as_producer_send_would_put_it(
    kafka_bootstrap: str, contract_topics: dict[str, str]
) -> None:
    decisions, dlq = contract_topics["decisions"], contract_topics["decisions.dlq"]
    # 1,200 records of ~1 KB on 6 partitions: each partition's share fills several
    # batches of _BATCH_BYTES; one record of 300 KB is larger than a batch on its own.
    big = 300 * 1024
    assert big > _BATCH_BYTES
    records = [
        OutRecord(
            decisions,
            f"c-{i % 37}".encode(),
            b"%d:" % i + b"x" * (big if i == 700 else 1000),
            (("rule", b"discount"), ("decision_id", str(i).encode())),
            1_764_237_600_000 + i,
        )
        for i in range(1200)
    ]
    # Dead letters: the original key, possibly none (a random partition, as send does).
    records += [OutRecord(dlq, None if i % 2 else b"k", b"bad %d" % i, ()) for i in range(20)]

    transport = KafkaTransport(Settings(bootstrap_servers=kafka_bootstrap))
    producer: AIOKafkaProducer = await transport._start_producer(None)
    try:
        await _send_all(producer, records, _Partitions())
        partitions = sorted(await producer.partitions_for(decisions))
    finally:
        await producer.stop()

    got = await _read(kafka_bootstrap, decisions)
    assert len(got) == 1200
    partitioner = DefaultPartitioner()
    for p in partitions:
        sent = [r for r in records[:1200] if partitioner(r.key, partitions, partitions) == p]
        landed = [(k, v, ts) for part, k, v, ts in got if part == p]
        assert landed == [(r.key, r.value, r.timestamp_ms) for r in sent], f"partition {p}"
    dead = await _read(kafka_bootstrap, dlq)
    assert [v for _, _, v, _ in dead] == [b"bad %d" % i for i in range(20)]
