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
from aiokafka.errors import KafkaError

from streamrules.config import Settings
from streamrules.errors import TransportError
from streamrules.transport.base import OutRecord
from streamrules.transport.kafka import _BATCH_BYTES, _Partitions, _send_all, client_options

__all__ = ["OutputProducer"]


class OutputProducer:
    """Sends batches of output records; ``send_all`` returns once the broker acked all."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._partitions = _Partitions()

    async def start(self) -> None:
        s = self.settings
        producer = AIOKafkaProducer(
            client_id=f"{s.client_id}-producer",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=_BATCH_BYTES,
            **client_options(s),
        )
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise TransportError(f"cannot connect to {s.bootstrap}: {exc}") from None
        self._producer = producer

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
