"""Transport stage, Kafka: the output producer of a runtime whose input is read by another
client (the Faust runtime, ``streamrules.faust``).

The same producer as ``KafkaTransport``'s at-least-once path (``acks=all``, idempotent,
one batch per partition with aiokafka's batch API, ``kafka._send_all``), so that both
runtimes put decisions and dead letters on the same partitions the same way, and a batch
costs one produce round trip, not one per record.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from streamrules.config import Settings
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import _Partitions, _send_all, start_output_producer

__all__ = ["OutputProducer"]


class OutputProducer:
    """Sends batches of output records; ``send_all`` returns once the broker acked all."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._partitions = _Partitions()

    async def start(self) -> None:
        self._producer = await start_output_producer(self.settings)

    async def send_all(self, records: Sequence[OutRecord]) -> None:
        if self._producer is None:
            await self.start()
        assert self._producer is not None
        await _send_all(self._producer, records, self._partitions)

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.flush()
            finally:
                await producer.stop()
