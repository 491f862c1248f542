"""Transport stage, Kafka: read given input partitions outside the consumer group.

``PartitionReader`` is a consumer with manual assignment (it never joins the group): the
Faust runtime (``streamrules.faust``) rebuilds working memory with it after an assignment,
re-reading each assigned partition from as far back as its facts matter up to the group's
committed offset, while Faust's own group member waits at that committed offset; and it
reads the incidents partitions Faust did not assign to the worker, all the time (global
incidents, as ``KafkaTransport``'s global consumer). It reads the group's committed
offsets and frontiers (OffsetFetch needs the group id) but never commits.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTP
from aiokafka.errors import IllegalStateError, KafkaError

from streamrules.codec import Record
from streamrules.config import Settings
from streamrules.errors import TransportError
from streamrules.transport.base import TopicPartition
from streamrules.transport.kafka import (
    client_options,
    committed_metadata,
    offsets_for_time,
    timestamp_before,
)

__all__ = ["PartitionReader"]

log = logging.getLogger(__name__)


def _ktp(tp: TopicPartition) -> KafkaTP:
    return KafkaTP(tp[0], tp[1])


class PartitionReader:
    """Offsets and records of assigned-by-hand partitions (see the module docstring)."""

    def __init__(self, settings: Settings, client_suffix: str = "rebuild") -> None:
        self.settings = settings
        self._suffix = client_suffix
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            group_id=s.group_id,  # for the committed offsets only: no subscribe, no commit
            client_id=f"{s.client_id}-{self._suffix}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.batch_size,
            **client_options(s),
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise TransportError(f"cannot connect to {s.bootstrap}: {exc}") from None
        self._consumer = consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("PartitionReader not started")
        return self._consumer

    def assign(self, tps: Collection[TopicPartition]) -> None:
        self.consumer.assign([_ktp(tp) for tp in sorted(tps)])

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int | None]:
        out: dict[TopicPartition, int | None] = {}
        for tp in tps:
            c = await self.consumer.committed(_ktp(tp))
            out[tp] = c if c is not None and c >= 0 else None
        return out

    async def committed_metadata(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str] | None]:
        """The group's committed offsets with their metadata (frontiers)."""
        return await committed_metadata(self.consumer, tps)

    async def partition_counts(self, topics: Collection[str]) -> dict[str, int]:
        """How many partitions each of ``topics`` has (one metadata request)."""
        cluster = await self.consumer._client.fetch_all_metadata()
        return {t: len(cluster.partitions_for_topic(t) or ()) for t in topics}

    def pause(self, tps: Collection[TopicPartition]) -> None:
        """Stop fetching ``tps`` (until the next ``assign``)."""
        self.consumer.pause(*[_ktp(tp) for tp in sorted(tps)])

    def highwater(self, tp: TopicPartition) -> int | None:
        """The end of ``tp`` as the last fetch found it (None: not fetched yet)."""
        try:
            hw = self.consumer.highwater(_ktp(tp))
        except IllegalStateError:  # not assigned (any more)
            return None
        return None if hw is None else int(hw)

    async def beginning(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        found = await self.consumer.beginning_offsets([_ktp(tp) for tp in tps])
        return {(k.topic, k.partition): int(v) for k, v in found.items()}

    async def end(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        found = await self.consumer.end_offsets([_ktp(tp) for tp in tps])
        return {(k.topic, k.partition): int(v) for k, v in found.items()}

    async def timestamp_before(self, tp: TopicPartition, offset: int) -> int | None:
        """The timestamp of the record just before ``offset`` (None: none found)."""
        return await timestamp_before(self.consumer, tp, offset)

    async def offsets_for_time(
        self, tps: Collection[TopicPartition], ts_ms: int
    ) -> dict[TopicPartition, int | None]:
        return await offsets_for_time(self.consumer, tps, ts_ms)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.consumer.seek(_ktp(tp), offset)

    async def position(self, tp: TopicPartition) -> int:
        return int(await self.consumer.position(_ktp(tp)))

    async def fetch(
        self, timeout_ms: int, max_records: int, tps: Collection[TopicPartition]
    ) -> list[Record]:
        """Up to ``max_records`` records of ``tps``, each partition's in offset order."""
        batches = await self.consumer.getmany(
            *[_ktp(tp) for tp in tps], timeout_ms=timeout_ms, max_records=max_records
        )
        out: list[Record] = []
        for ktp, msgs in batches.items():
            for m in msgs:
                headers = tuple((k, bytes(v or b"")) for k, v in m.headers or ())
                out.append(
                    Record(ktp.topic, ktp.partition, m.offset, m.key, m.value or b"", headers)
                )
        return out
