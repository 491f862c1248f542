"""Transport stage, in memory: a broker of lists, for tests and examples without Kafka.

``MemoryBroker`` holds topics (lists of partitions of records) and committed offsets per
group; ``MemoryTransport`` implements ``transport.base.Transport`` over it for one group
member. Tests decide the assignment (``assign``) and so drive rebalances by hand; record
timestamps are whatever the producer gave (the service gives decisions their event time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from streamrules.codec import Record
from streamrules.errors import TransportError
from streamrules.transport.base import OutRecord, RebalanceCallback, TopicPartition

__all__ = ["ManualClock", "MemoryBroker", "MemoryTransport", "StoredRecord"]


class ManualClock:
    """Processing time in milliseconds that only moves when told (or when a fetch waits)."""

    def __init__(self, start_ms: int = 0) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@dataclass(frozen=True, slots=True)
class StoredRecord:
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp_ms: int


@dataclass(slots=True)
class MemoryBroker:
    topics: dict[str, list[list[StoredRecord]]] = field(default_factory=dict)
    commits: dict[str, dict[TopicPartition, int]] = field(default_factory=dict)
    metadata: dict[str, dict[TopicPartition, str]] = field(default_factory=dict)

    def create_topic(self, name: str, partitions: int = 1) -> None:
        self.topics.setdefault(name, [[] for _ in range(partitions)])

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: tuple[tuple[str, bytes], ...] = (),
        timestamp_ms: int = 0,
    ) -> int:
        parts = self.topics.get(topic)
        if parts is None:
            raise TransportError(f"unknown topic {topic!r}")
        if partition is None:
            partition = self.partition_of(topic, key or b"")
        log = parts[partition]
        log.append(StoredRecord(len(log), key, value, headers, timestamp_ms))
        return log[-1].offset

    def partition_of(self, topic: str, key: bytes) -> int:
        """This broker's partitioner: the sum of the key's bytes."""
        return sum(key) % len(self.topics[topic])

    def records(self, topic: str) -> list[StoredRecord]:
        """All records of a topic, partition by partition."""
        return [r for part in self.topics.get(topic, []) for r in part]


class MemoryTransport:
    """One member of a consumer group over a ``MemoryBroker``."""

    def __init__(
        self,
        broker: MemoryBroker,
        group: str,
        topics: Sequence[str],
        *,
        fail_deliveries: int = 0,
        clock: ManualClock | None = None,
        fetch_ms: int = 0,
        global_topics: Sequence[str] = (),
    ) -> None:
        self.broker = broker
        self.group = group
        self.topics = tuple(topics)
        # Topics read in full outside the assignment (as KafkaTransport reads incidents).
        self.global_topics = tuple(global_topics)
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._global: frozenset[TopicPartition] = frozenset()
        self._position: dict[TopicPartition, int] = {}
        self._on_revoked: RebalanceCallback | None = None
        self._on_assigned: RebalanceCallback | None = None
        self.started = False
        self.deliveries = 0
        # Deliveries that raise before anything is written (a broker failure).
        self.fail_deliveries = fail_deliveries
        # A fetch that finds nothing "waits" its timeout on this clock; one that finds
        # records takes ``fetch_ms`` (a network round trip).
        self.clock = clock
        self.fetch_ms = fetch_ms

    def all_partitions(self) -> frozenset[TopicPartition]:
        return frozenset(
            (t, p) for t in self.topics for p in range(len(self.broker.topics.get(t, [])))
        )

    async def assign(self, tps: Collection[TopicPartition]) -> None:
        """Simulate a rebalance that gives this member ``tps``."""
        if self._on_revoked is not None and self._assigned:
            await self._on_revoked(self._assigned)
        self._assigned = frozenset(tps)
        self._global = frozenset(
            tp for tp in self.all_partitions() if tp[0] in self.global_topics
        ).difference(self._assigned)
        commits = self.broker.commits.get(self.group, {})
        self._position = {tp: commits.get(tp, 0) for tp in self._assigned | self._global}
        if self._on_assigned is not None:
            await self._on_assigned(self._assigned)

    # -- Transport ---------------------------------------------------------------------
    async def start(self, on_revoked: RebalanceCallback, on_assigned: RebalanceCallback) -> None:
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        self.started = True
        if not self._assigned:
            await self.assign(self.all_partitions())

    async def stop(self) -> None:
        self.started = False

    def assignment(self) -> frozenset[TopicPartition]:
        return self._assigned

    def inputs(self) -> frozenset[TopicPartition]:
        return self._assigned | self._global

    def partition_of(self, topic: str, key: bytes) -> int:
        return self.broker.partition_of(topic, key)

    async def fetch(
        self,
        timeout_ms: int,
        max_records: int,
        partitions: Collection[TopicPartition] | None = None,
    ) -> list[Record]:
        out: list[Record] = []
        inputs = self.inputs()
        wanted = inputs if partitions is None else inputs & set(partitions)
        for tp in sorted(wanted):
            log = self.broker.topics[tp[0]][tp[1]]
            pos = self._position[tp]
            take = log[pos : pos + max_records - len(out)]
            out.extend(Record(tp[0], tp[1], r.offset, r.key, r.value, r.headers) for r in take)
            self._position[tp] = pos + len(take)
            if len(out) >= max_records:
                break
        if self.clock is not None:
            self.clock.advance(self.fetch_ms if out else timeout_ms)
        await asyncio.sleep(0)
        return out

    def behind(self, tp: TopicPartition) -> bool:
        return (self.lag(tp) or 0) > 0

    def broker_up(self) -> bool:
        return True

    def lag(self, tp: TopicPartition) -> int | None:
        return len(self.broker.topics[tp[0]][tp[1]]) - self._position.get(tp, 0)

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int | None]:
        commits = self.broker.commits.get(self.group, {})
        return {tp: commits.get(tp) for tp in tps}

    async def committed_metadata(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str] | None]:
        commits = self.broker.commits.get(self.group, {})
        meta = self.broker.metadata.get(self.group, {})
        return {tp: None if tp not in commits else (commits[tp], meta.get(tp, "")) for tp in tps}

    async def timestamp_before(self, tp: TopicPartition, offset: int) -> int | None:
        log = self.broker.topics[tp[0]][tp[1]]
        return log[offset - 1].timestamp_ms if 0 < offset <= len(log) else None

    async def offsets_for_time(
        self, tps: Collection[TopicPartition], ts_ms: int
    ) -> dict[TopicPartition, int | None]:
        out: dict[TopicPartition, int | None] = {}
        for tp in tps:
            log = self.broker.topics[tp[0]][tp[1]]
            out[tp] = next((r.offset for r in log if r.timestamp_ms >= ts_ms), None)
        return out

    async def beginning(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(tps, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position[tp] = offset

    async def deliver(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        if self.fail_deliveries > 0:
            self.fail_deliveries -= 1
            raise TransportError("delivery failed (simulated)", retriable=True)
        for r in records:
            self.broker.produce(
                r.topic, r.key, r.value, headers=r.headers, timestamp_ms=r.timestamp_ms or 0
            )
        owned = {tp: off for tp, off in offsets.items() if tp in self._assigned}
        self.broker.commits.setdefault(self.group, {}).update(owned)
        meta = self.broker.metadata.setdefault(self.group, {})
        for tp in owned:
            meta[tp] = (metadata or {}).get(tp, "")
        self.deliveries += 1
