"""Transport stage, the seam: what the service needs from a message broker.

``app.py`` drives the flow through this protocol only; ``kafka.py`` implements it with
aiokafka and ``memory.py`` in memory for tests. A transport is a consumer of the input
partitions assigned to this instance plus a producer of decisions and dead letters, because
the two meet in the commit: offsets are committed with (exactly-once) or after
(at-least-once) the output they caused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from streamrules.codec import Record

__all__ = ["OutRecord", "RebalanceCallback", "TopicPartition", "Transport"]

TopicPartition = tuple[str, int]  # (topic, partition), as in streamrules.merge
RebalanceCallback = Callable[[frozenset[TopicPartition]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutRecord:
    """A record to produce."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


class Transport(Protocol):
    """The service's view of the broker (input consumer + output producer)."""

    async def start(self, on_revoked: RebalanceCallback, on_assigned: RebalanceCallback) -> None:
        """Connect and subscribe; the callbacks run around every rebalance.

        ``on_revoked`` gets the partitions being taken away (commit them now: afterwards
        another instance owns them); ``on_assigned`` the full new assignment.
        """

    async def stop(self) -> None:
        """Leave the group and close, after everything sent was acknowledged."""

    def assignment(self) -> frozenset[TopicPartition]:
        """The input partitions this instance owns now."""

    def inputs(self) -> frozenset[TopicPartition]:
        """Every input partition this instance reads: those it owns and, outside the
        group's assignment, the partitions of the global topics (incidents) it does not
        own. ``fetch``, ``seek``, ``lag`` and the lookups take any of them."""

    def partition_of(self, topic: str, key: bytes) -> int:
        """The partition a record of ``topic`` with ``key`` goes to (the producers'
        partitioner)."""

    async def fetch(
        self,
        timeout_ms: int,
        max_records: int,
        partitions: Collection[TopicPartition] | None = None,
    ) -> list[Record]:
        """Up to ``max_records`` new records (each partition's in offset order), of the
        given assigned ``partitions`` only (None: all of them)."""

    def broker_up(self) -> bool:
        """False while the broker is known not to answer (True when unknown)."""

    def behind(self, tp: TopicPartition) -> bool:
        """True when the broker is known to hold records of ``tp`` not fetched yet."""

    def lag(self, tp: TopicPartition) -> int | None:
        """Records of ``tp`` on the broker after the last one fetched (None: unknown)."""

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offsets (None: never committed)."""

    async def committed_metadata(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str] | None]:
        """The group's committed offsets with their metadata, owned or not (None: never
        committed)."""

    async def timestamp_before(self, tp: TopicPartition, offset: int) -> int | None:
        """The timestamp (epoch ms) of the record just before ``offset``, if any."""

    async def offsets_for_time(
        self, tps: Collection[TopicPartition], ts_ms: int
    ) -> dict[TopicPartition, int | None]:
        """Earliest offset whose timestamp is >= ``ts_ms`` (None: no such record)."""

    async def beginning(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        """The first offset still on the broker."""

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Fetch ``tp`` from ``offset`` next; records fetched before are forgotten."""

    async def deliver(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        """Produce ``records`` and commit ``offsets`` (next offset to read, per partition)
        with each partition's commit ``metadata`` (a string; empty when not given).

        Returns once the broker acknowledged both; the offsets are committed only after
        the records are acknowledged (or atomically with them, exactly-once).
        """
