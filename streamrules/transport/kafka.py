"""Transport stage, Kafka: aiokafka consumer and producer for the service, produce and tail.

``KafkaTransport`` implements ``transport.base.Transport`` for ``streamrules run``: a
consumer group member over the input topics (``enable_auto_commit=False``) and a producer
of decisions and dead letters.

- At-least-once: the records of a batch are sent as one producer batch per partition
  (aiokafka's batch API, partitions as the default partitioner chooses them), every
  batch's future awaited (the broker acknowledged with ``acks=all``, idempotent
  producer), then the batch's offsets are committed explicitly for the partitions still
  owned. A commit that a rebalance makes fail is logged and dropped, never retried in a
  loop: the new owner re-reads from the last committed offset.
- Exactly-once: decisions, dead letters and offsets in one transaction
  (``send_offsets_to_transaction``). aiokafka lacks KIP-447 (no group generation in the
  transactional offset commit), so zombies are fenced by the transactional id alone, the
  pre-2.5 way: one transactional producer per assigned partition set, with a deterministic
  id derived from the group and the partitions, (re)created on every assignment.

- Global incidents: a second consumer, outside the group (no group id, assigned by hand),
  reads the partitions of the incidents topic that the group did not give this member,
  so that every instance sees every incident (contract section 5; Kafka Streams'
  global tables). Its positions are never committed: the owner of each partition commits
  it. ``inputs()`` is both sets; fetches, seeks, lags and lookups go to whichever
  consumer reads the partition.

``KafkaProducerClient`` and ``follow`` serve ``produce`` and ``tail`` (and the tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTP
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from aiokafka.errors import (
    CommitFailedError,
    GroupAuthorizationFailedError,
    IllegalGenerationError,
    InvalidTimestampError,
    InvalidTxnState,
    KafkaConnectionError,
    KafkaError,
    RebalanceInProgressError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

from streamrules.acls import transactional_id_prefix
from streamrules.codec import Record
from streamrules.codec.events import positional_maker
from streamrules.config import Settings
from streamrules.errors import TransportError
from streamrules.transport import kafka_admin, kafka_errors
from streamrules.transport.base import OutRecord, RebalanceCallback, TopicPartition

__all__ = [
    "ConsumedRecord",
    "KafkaProducerClient",
    "KafkaTransport",
    "follow",
    "record_counts",
    "wait_acked",
]

log = logging.getLogger(__name__)

_LOOKUP_TIMEOUT_MS = 5_000
_make_record = positional_maker(Record)  # one per fetched record: the hot path
# The producer's batch size (bytes): a batch of the service's decisions for one partition
# goes in one produce request (aiokafka's default, 16 KiB, is about 40 decisions).
_BATCH_BYTES = 256 * 1024
# The broker probe: how often the service asks whether the broker answers, and how long
# an answer may take.
PROBE_INTERVAL_S = 2.0
_PROBE_TIMEOUT_S = 5.0
_TXN_TIMEOUT_MS = 10_000


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by consumers and producers (security included)."""
    opts = settings.kafka_options()
    cafile, certfile, keyfile = settings.ssl_files()
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        try:
            opts["ssl_context"] = create_ssl_context(
                cafile=cafile, certfile=certfile, keyfile=keyfile
            )
        except (OSError, ValueError) as exc:
            raise TransportError(
                f"cannot use the TLS files (ssl_cafile {cafile}, ssl_certfile {certfile}, "
                f"ssl_keyfile {keyfile}): {exc}"
            ) from None
    return opts


async def _connect_failed(settings: Settings, exc: BaseException) -> TransportError:
    """Why a client could not start, as one line (wrong password, unknown CA, ...)."""
    return await kafka_errors.connect_error(
        settings.bootstrap, client_options(settings), exc, cafile=settings.ssl_cafile
    )


def _refused(
    settings: Settings, exc: BaseException, doing: str, needed: str | None = None
) -> TransportError | None:
    """A clear error naming the ACL when ``exc`` is an authorization failure."""
    return kafka_errors.authorization_error(exc, settings.kafka_options(), doing, needed)


def _read_refused(settings: Settings, exc: BaseException) -> TransportError | None:
    """Authorization failures of a consumer: the group or the topics it reads."""
    if isinstance(exc, GroupAuthorizationFailedError):
        g = settings.group_id
        return _refused(settings, exc, f"use consumer group {g!r}", f"READ on group {g!r}")
    topics = kafka_errors.refused_topics(exc)
    names = ", ".join(repr(t) for t in topics) or "the input topics"
    return _refused(settings, exc, f"read topic {names}", f"READ on topic {names}")


async def _absent_topics(
    settings: Settings, names: Sequence[str], existing: Collection[str]
) -> tuple[list[str], list[str]]:
    """(missing, refused): topics absent from this principal's metadata, told apart.

    Refused ones do not exist or may not be described by this principal (Kafka does not
    say which to an unauthorized client); only then is a second request made.
    """
    absent = [t for t in names if t not in existing]
    if not absent:
        return [], []
    bootstrap, options = kafka_admin.settings_options(settings)
    async with kafka_admin.admin_client(bootstrap, **options) as admin:
        seen = await kafka_admin.topic_visibility(admin, absent)
    refused = [t for t in absent if seen.get(t) == "refused"]
    return [t for t in absent if t not in refused], refused


def _refused_topics(
    settings: Settings, refused: Sequence[str], needs: str, role: str = "run"
) -> TransportError:
    who = kafka_errors.principal(settings.kafka_options())
    acls = "; ".join(f"{needs} on topic {t!r}" for t in refused)
    option = "" if role == "run" else f" --acls-for {role}"
    return TransportError(
        f"topic{'s' if len(refused) > 1 else ''} {', '.join(refused)} not visible to {who}: "
        f"it does not exist or {who} lacks ACL {acls} (streamrules topics apply --acls {who}"
        f"{option} creates the topics and the ACLs `{role}` needs)"
    )


def _tp(tp: KafkaTP) -> TopicPartition:
    return (tp.topic, tp.partition)


def _ktp(tp: TopicPartition) -> KafkaTP:
    return KafkaTP(tp[0], tp[1])


def transactional_id(group: str, tps: Collection[TopicPartition]) -> str:
    """Deterministic transactional id of a partition set (the same set, the same id)."""
    names = ",".join(f"{t}:{p}" for t, p in sorted(tps))
    return f"{group}-{hashlib.sha256(names.encode()).hexdigest()[:16]}"


async def start_output_producer(settings: Settings, txn_id: str | None = None) -> AIOKafkaProducer:
    """The producer of decisions and dead letters (transactional with ``txn_id``),
    started; a failure is a TransportError naming the problem."""
    s = settings
    extra: dict[str, Any] = {}
    if txn_id:
        # Kafka Streams' exactly-once default: a crashed instance's open transaction is
        # aborted after 10 s, so that read-committed consumers of decisions wait on it
        # that long at most (another member takes its partitions with another
        # partition set, so its transactional id does not fence the dead one's).
        extra = {"transactional_id": txn_id, "transaction_timeout_ms": _TXN_TIMEOUT_MS}
    producer = AIOKafkaProducer(
        client_id=f"{s.client_id}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=_BATCH_BYTES,
        **extra,
        **client_options(s),
    )
    try:
        await producer.start()
    except KafkaError as exc:
        await producer.stop()
        if txn_id is not None and isinstance(exc, TransactionalIdAuthorizationFailed):
            prefix = transactional_id_prefix(s.group_id)
            raise _refused(  # type: ignore[misc]
                s,
                exc,
                f"use transactional id {txn_id!r} (exactly-once)",
                f"WRITE on transactional ids with the prefix {prefix!r}",
            ) from None
        raise await _connect_failed(s, exc) from None
    return producer


async def timestamp_before(
    consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int
) -> int | None:
    """The timestamp (epoch ms) of ``tp``'s record just before ``offset``, read with
    ``consumer`` (which reads ``tp``; its position moves); None when there is none."""
    if offset <= 0:
        return None
    consumer.seek(_ktp(tp), offset - 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _LOOKUP_TIMEOUT_MS / 1000
    while loop.time() < deadline:
        got = await consumer.getmany(_ktp(tp), timeout_ms=200, max_records=1)
        for msgs in got.values():
            if msgs:
                return int(msgs[0].timestamp)
    return None


async def offsets_for_time(
    consumer: AIOKafkaConsumer, tps: Collection[TopicPartition], ts_ms: int
) -> dict[TopicPartition, int | None]:
    """Per partition, the earliest offset whose timestamp is >= ``ts_ms`` (None: none)."""
    found = await consumer.offsets_for_times({_ktp(tp): max(0, ts_ms) for tp in tps})
    return {_tp(k): (v.offset if v is not None else None) for k, v in found.items()}


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, transport: KafkaTransport) -> None:
        self._t = transport

    async def on_partitions_revoked(self, revoked: Collection[KafkaTP]) -> None:
        await self._t._revoked(frozenset(_tp(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Collection[KafkaTP]) -> None:
        await self._t._assigned(frozenset(_tp(tp) for tp in assigned))


class KafkaTransport:
    """The service's consumer-group member and producer (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.exactly_once = settings.exactly_once
        self._consumer: AIOKafkaConsumer | None = None
        # Reads the global topics' partitions the group did not assign to this member.
        self._global_consumer: AIOKafkaConsumer | None = None
        self._global: frozenset[TopicPartition] = frozenset()
        self._producer: AIOKafkaProducer | None = None
        self._on_revoked: RebalanceCallback | None = None
        self._on_assigned: RebalanceCallback | None = None
        self._next: dict[TopicPartition, int] = {}
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._txn_id: str | None = None
        self._broker_up = True
        self._prober: asyncio.Task[None] | None = None
        self._closing = False
        self._partitions = _Partitions()

    # -- lifecycle -------------------------------------------------------------------
    async def start(self, on_revoked: RebalanceCallback, on_assigned: RebalanceCallback) -> None:
        s = self.settings
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        consumer = AIOKafkaConsumer(
            group_id=s.group_id,
            client_id=f"{s.client_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.batch_size,
            # Sticky first: a rebalance moves as few partitions as it can, and a member
            # given back what it held keeps its working memory. Round robin stays offered
            # so that a group of older instances can be upgraded one at a time.
            partition_assignment_strategy=(StickyPartitionAssignor, RoundRobinPartitionAssignor),
            **client_options(s),
        )
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise await _connect_failed(s, exc) from None
        self._consumer = consumer
        names = (s.orders_topic, s.incidents_topic, s.decisions_topic, s.dlq_topic)
        try:
            missing, refused = await _absent_topics(s, names, await consumer.topics())
        except BaseException:
            await self.stop()
            raise
        if missing or refused:
            await self.stop()
        if missing:
            raise TransportError(
                f"missing topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} on "
                f"{s.bootstrap} (streamrules topics apply creates them)"
            )
        for need, group in (("READ", names[:2]), ("WRITE", names[2:])):
            if any(t in refused for t in group):
                raise _refused_topics(s, [t for t in group if t in refused], need)
        if not self.exactly_once:
            self._producer = await self._start_producer(None)
        self._global_consumer = AIOKafkaConsumer(
            group_id=None,
            client_id=f"{s.client_id}-global",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=s.batch_size,
            **client_options(s),
        )
        try:
            await self._global_consumer.start()
        except KafkaError as exc:
            await self.stop()
            raise await _connect_failed(s, exc) from None
        consumer.subscribe([s.orders_topic, s.incidents_topic], listener=_Listener(self))
        self._prober = asyncio.create_task(self._probe(), name="streamrules-broker-probe")

    async def _start_producer(self, txn_id: str | None) -> AIOKafkaProducer:
        return await start_output_producer(self.settings, txn_id)

    async def stop(self) -> None:
        self._closing = True
        if self._prober is not None:
            self._prober.cancel()
            await asyncio.wait([self._prober], timeout=_PROBE_TIMEOUT_S)
            self._prober = None
        if self._producer is not None:
            try:
                await self._producer.flush()
            finally:
                await self._producer.stop()
                self._producer = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._global_consumer is not None:
            await self._global_consumer.stop()
            self._global_consumer = None

    async def _revoked(self, tps: frozenset[TopicPartition]) -> None:
        if self._on_revoked is not None:
            await self._on_revoked(tps)
        self._assignment = frozenset()

    async def _assigned(self, tps: frozenset[TopicPartition]) -> None:
        self._assignment = tps
        self._next = {}
        topic = self.settings.incidents_topic
        count = self.consumer.partitions_for_topic(topic) or set()
        self._global = frozenset((topic, p) for p in count).difference(tps)
        if self._global_consumer is not None:
            self._global_consumer.assign([_ktp(tp) for tp in sorted(self._global)])
        if self._on_assigned is not None:
            await self._on_assigned(tps)

    async def _transactional_producer(self) -> AIOKafkaProducer:
        """The producer of the current partition set, (re)created when the set changed.

        Created lazily, from ``deliver`` (under the service's batch lock), so that no batch
        ever sees a producer half swapped. Starting it fences any older producer of the
        same partition set (a zombie of a previous owner).
        """
        txn = transactional_id(self.settings.group_id, self._assignment)
        if self._producer is not None and self._txn_id == txn:
            return self._producer
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
        self._producer = await self._start_producer(txn)
        self._txn_id = txn
        log.info("transactional producer %s for %d partitions", txn, len(self._assignment))
        return self._producer

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise TransportError("the Kafka transport is not started")
        return self._consumer

    # -- input -----------------------------------------------------------------------
    def assignment(self) -> frozenset[TopicPartition]:
        return self._assignment

    def inputs(self) -> frozenset[TopicPartition]:
        return self._assignment | self._global

    def partition_of(self, topic: str, key: bytes) -> int:
        return partition_for_key(key, len(self.consumer.partitions_for_topic(topic) or ()))

    def _reader(self, tp: TopicPartition) -> AIOKafkaConsumer:
        """The consumer that reads ``tp``: the group member's, or the global one."""
        if tp in self._global and self._global_consumer is not None:
            return self._global_consumer
        return self.consumer

    async def fetch(
        self,
        timeout_ms: int,
        max_records: int,
        partitions: Collection[TopicPartition] | None = None,
    ) -> list[Record]:
        glob = self._global if partitions is None else self._global & set(partitions)
        calls = []
        if partitions is None:
            # All owned ones, and before the first assignment none: the group consumer's
            # getmany is also where a failure to join (an ACL) surfaces.
            calls.append(self._getmany(self.consumer, (), timeout_ms, max_records))
        elif owned := self._assignment.intersection(partitions):
            calls.append(self._getmany(self.consumer, owned, timeout_ms, max_records))
        if glob and self._global_consumer is not None:
            calls.append(self._getmany(self._global_consumer, glob, timeout_ms, max_records))
        if not calls:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        if len(calls) == 1:
            return await calls[0]
        first, second = await asyncio.gather(*calls)
        return first + second

    async def _getmany(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Collection[TopicPartition],
        timeout_ms: int,
        max_records: int,
    ) -> list[Record]:
        wanted = [_ktp(tp) for tp in partitions]
        try:
            batches = await consumer.getmany(
                *wanted, timeout_ms=timeout_ms, max_records=max_records
            )
        except KafkaConnectionError as exc:
            # The probe reports the outage (once); the consumer reconnects by itself.
            log.debug("fetch failed, retrying: %s", exc)
            await asyncio.sleep(timeout_ms / 1000)
            return []
        except KafkaError as exc:
            refused = _read_refused(self.settings, exc)
            raise refused or TransportError(f"fetching from Kafka failed: {exc}") from None
        out: list[Record] = []
        append = out.append
        for ktp, msgs in batches.items():
            if not msgs:
                continue
            topic, partition = ktp.topic, ktp.partition
            # Once per record: the maker, and no header tuple built for the common record
            # without headers.
            for m in msgs:
                headers = m.headers
                append(
                    _make_record(
                        topic,
                        partition,
                        m.offset,
                        m.key,
                        m.value or b"",
                        tuple([(k, bytes(v or b"")) for k, v in headers]) if headers else (),
                    )
                )
            self._next[(topic, partition)] = msgs[-1].offset + 1
        return out

    def _end(self, tp: TopicPartition) -> int | None:
        reader = self._reader(tp)
        end: int | None = reader.last_stable_offset(_ktp(tp))
        if end is None:
            end = reader.highwater(_ktp(tp))
        return end

    def lag(self, tp: TopicPartition) -> int | None:
        end = self._end(tp)
        nxt = self._next.get(tp)
        if end is None or nxt is None:
            return None
        return max(0, end - nxt)

    def behind(self, tp: TopicPartition) -> bool:
        return (self.lag(tp) or 0) > 0

    def broker_up(self) -> bool:
        return self._broker_up

    async def _probe(self) -> None:
        """Ask the cluster for its metadata every few seconds: the broker's state as the
        service reports it (aiokafka's own connection errors only say that *a* request
        failed, thousands of times a minute during an outage)."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        # that meets the inner call's completion, and the probe would outlive stop().
        while not self._closing:
            self._broker_up = await broker_answers(self.consumer)
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def committed(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int | None]:
        found = await self.committed_metadata(tps)
        return {tp: None if c is None else c[0] for tp, c in found.items()}

    async def committed_metadata(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, tuple[int, str] | None]:
        return await committed_metadata(self.consumer, tps)

    async def timestamp_before(self, tp: TopicPartition, offset: int) -> int | None:
        return await timestamp_before(self._reader(tp), tp, offset)

    async def offsets_for_time(
        self, tps: Collection[TopicPartition], ts_ms: int
    ) -> dict[TopicPartition, int | None]:
        return await offsets_for_time(self.consumer, tps, ts_ms)

    async def beginning(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, int]:
        found = await self.consumer.beginning_offsets([_ktp(tp) for tp in tps])
        return {_tp(k): int(v) for k, v in found.items()}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._reader(tp).seek(_ktp(tp), offset)
        self._next[tp] = offset

    # -- output ----------------------------------------------------------------------
    async def deliver(
        self,
        records: Sequence[OutRecord],
        offsets: Mapping[TopicPartition, int],
        metadata: Mapping[TopicPartition, str] | None = None,
    ) -> None:
        # Only the partitions the group gave this member are committed (the global
        # consumer's positions are its owner's to commit).
        meta = metadata or {}
        owned = {
            _ktp(tp): (off, meta.get(tp, ""))
            for tp, off in offsets.items()
            if tp in self._assignment
        }
        if self.exactly_once:
            producer = await self._transactional_producer()
            await self._deliver_transaction(producer, records, owned)
            return
        if self._producer is None:
            raise TransportError("the Kafka transport is not started")
        await _send_all(self._producer, records, self._partitions)
        await self._commit(owned)

    async def _deliver_transaction(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[OutRecord],
        offsets: dict[KafkaTP, tuple[int, str]],
    ) -> None:
        await producer.begin_transaction()
        try:
            await _send_all(producer, records, self._partitions)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.settings.group_id)
        except BaseException as exc:
            _retrieve_transaction_error(producer)
            try:
                await producer.abort_transaction()
            except KafkaError:
                # Aborting after a fatal error fails too; the transaction is not committed
                # either way, and the first error is the one to report.
                log.debug("abort after a failed transaction failed", exc_info=True)
            if isinstance(exc, KafkaError):
                refused = _read_refused(self.settings, exc)
                raise refused or TransportError(f"transaction failed: {exc}") from None
            raise
        try:
            await producer.commit_transaction()
        except KafkaError as exc:
            raise TransportError(f"transaction failed: {exc}") from None

    async def _commit(self, owned: dict[KafkaTP, tuple[int, str]]) -> None:
        await _commit(self.consumer, self.settings, owned)


async def broker_answers(consumer: AIOKafkaConsumer) -> bool:
    """Whether the cluster answers a metadata request in time (the broker probe)."""
    # asyncio.timeout, not wait_for: see KafkaTransport._probe.
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            await consumer.topics()
    except Exception:  # any failure to get an answer means: not reachable now
        return False
    return True


def partition_for_key(key: bytes, count: int) -> int:
    """The partition of ``count`` (at least 1) that the default partitioner gives ``key``
    (murmur2, as Kafka's Java client and aiokafka): where its owner reads it."""
    return int(murmur2(key) & 0x7FFFFFFF) % max(count, 1)


async def committed_metadata(
    consumer: AIOKafkaConsumer, tps: Collection[TopicPartition]
) -> dict[TopicPartition, tuple[int, str] | None]:
    """The committed offset and metadata of each of ``tps`` in the consumer's group (None:
    nothing committed), owned by this member or not, in one OffsetFetch (the public
    ``committed`` asks one at a time and drops the metadata)."""
    wanted = [_ktp(tp) for tp in tps]
    found = await consumer._coordinator.fetch_committed_offsets(wanted)
    out: dict[TopicPartition, tuple[int, str] | None] = {}
    for ktp in wanted:
        c = found.get(ktp)
        ok = c is not None and c.offset >= 0
        out[_tp(ktp)] = (int(c.offset), str(c.metadata or "")) if ok else None
    return out


async def commit_offsets(
    consumer: AIOKafkaConsumer, settings: Settings, owned: Mapping[TopicPartition, tuple[int, str]]
) -> None:
    """Commit offsets with metadata (frontiers) as the group member ``consumer``. A commit
    that a rebalance refuses is logged and dropped: the new owner re-reads from the last
    commit. The Faust runtime calls it in Faust's consumer thread."""
    await _commit(consumer, settings, {_ktp(tp): c for tp, c in owned.items()})


async def _commit(
    consumer: AIOKafkaConsumer, settings: Settings, offsets: dict[KafkaTP, tuple[int, str]]
) -> None:
    if not offsets:
        return
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalGenerationError, RebalanceInProgressError) as exc:
        log.warning("commit skipped after a rebalance: %s", exc)
    except KafkaError as exc:
        refused = _read_refused(settings, exc)
        raise refused or TransportError(f"committing offsets failed: {exc}") from None


def _retrieve_transaction_error(producer: AIOKafkaProducer) -> None:
    """Mark a failed transaction's error as seen (it is reported as our own error).

    aiokafka stores a refused AddPartitionsToTxn (no WRITE ACL, ...) in an internal future
    and replaces that future on abort without reading it, so asyncio would print "Future
    exception was never retrieved" with a traceback after the one-line error.
    """
    manager = getattr(producer, "_txn_manager", None)
    waiter = getattr(manager, "_transaction_waiter", None)
    if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
        waiter.exception()


def _send_failed(exc: KafkaError) -> TransportError:
    if isinstance(exc, TopicAuthorizationFailedError):
        names = ", ".join(repr(t) for t in kafka_errors.refused_topics(exc)) or "the topic"
        refused = kafka_errors.authorization_error(
            exc, None, f"write to topic {names}", f"WRITE on topic {names}"
        )
        assert refused is not None
        return refused
    if isinstance(exc, InvalidTimestampError):
        return TransportError(
            "the broker rejected a record timestamp (records are stamped with their event "
            "time, here too far from the broker's clock): set the topic's "
            "message.timestamp.after.max.ms / before.max.ms as topics/topics.toml does "
            "(streamrules topics apply)"
        )
    return TransportError(f"sending to Kafka failed: {exc}", retriable=exc.retriable)


async def wait_acked(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Wait until the broker acknowledged every send; a refusal becomes TransportError."""
    done = await asyncio.gather(*futures, return_exceptions=True)
    errors = [e for e in done if isinstance(e, BaseException)]
    if not errors:
        return
    refusals = [e for e in errors if isinstance(e, KafkaError)]
    if not refusals:
        raise errors[0]
    # In a transaction, one refused batch (no WRITE ACL, ...) fails the other batches with
    # InvalidTxnState, whichever completes first: the refusal is what says why.
    cause = next((e for e in refusals if not isinstance(e, InvalidTxnState)), refusals[0])
    raise _send_failed(cause) from None


class _Partitions:
    """Which partition a record goes to: aiokafka's default partitioner (murmur2 of the
    key; a random partition without one), with each key's partition remembered (bounded),
    since ``_send_all`` fills one batch per partition itself."""

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}
        self._available: dict[str, list[int]] = {}
        self._keys: dict[str, dict[bytes, int]] = {}

    async def refresh(self, producer: AIOKafkaProducer, topic: str) -> None:
        # Metadata the producer already has: no request, unless the topic is new to it.
        partitions = sorted(await producer.partitions_for(topic))
        if self._counts.get(topic) != partitions:
            self._counts[topic] = partitions
            self._keys[topic] = {}
        # A record without a key goes to a partition with a leader, as send() does.
        available = producer.client.cluster.available_partitions_for_topic(topic)
        self._available[topic] = sorted(available or partitions)

    def of(self, topic: str, key: bytes | None) -> int:
        partitions = self._counts[topic]
        if key is None:
            return random.choice(self._available[topic])
        keys = self._keys[topic]
        p = keys.get(key)
        if p is None:
            if len(keys) >= _KEYS_REMEMBERED:
                keys.clear()
            p = keys[key] = partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
        return p


_KEYS_REMEMBERED = 100_000


async def _send_all(
    producer: AIOKafkaProducer, records: Sequence[OutRecord], partitions: _Partitions
) -> None:
    """Send ``records`` and wait until the broker acknowledged all of them.

    One batch per partition (aiokafka's batch API: ``create_batch``/``send_batch``), each
    partition's records in the given order: one future and one await per batch rather
    than per record, and the partitions chosen as ``producer.send`` would."""
    by_partition: dict[tuple[str, int], list[OutRecord]] = {}
    futures: list[asyncio.Future[Any]] = []
    try:
        for topic in {r.topic for r in records}:
            await partitions.refresh(producer, topic)
        of = partitions.of
        for r in records:
            tp = (r.topic, of(r.topic, r.key))
            group = by_partition.get(tp)
            if group is None:
                by_partition[tp] = [r]
            else:
                group.append(r)
        for (topic, partition), group in by_partition.items():
            batch = producer.create_batch()
            for r in group:
                if _append(batch, r):
                    continue
                # The batch is full: off it goes, the record starts the next one.
                futures.append(await _send_batch(producer, batch, topic, partition))
                batch = producer.create_batch()
                if not _append(batch, r):
                    # Larger than a batch on its own: the producer's path (and its error).
                    futures.append(await _send_one(producer, r, partition))
                    batch = producer.create_batch()
            if batch.record_count():
                futures.append(await _send_batch(producer, batch, topic, partition))
    except (KafkaError, AssertionError) as exc:
        # A send fails because an earlier one did: a batch refused (no WRITE ACL, ...)
        # leaves a transaction in error, and aiokafka's next send only asserts. The cause
        # is in the earlier futures; collecting them also keeps asyncio from reporting
        # each as "never retrieved".
        done = await asyncio.gather(*futures, return_exceptions=True)
        cause = next((e for e in done if isinstance(e, KafkaError)), None)
        if cause is None and isinstance(exc, KafkaError):
            cause = exc
        if cause is None:
            raise
        raise _send_failed(cause) from None
    await wait_acked(futures)


async def _send_batch(producer: AIOKafkaProducer, batch: Any, topic: str, partition: int) -> Any:
    # Closed, a batch is complete: the sender takes it at once instead of waiting out the
    # producer's linger (nothing more would come), and no producer.send() can join it.
    batch.close()
    return await producer.send_batch(batch, topic, partition=partition)


def _append(batch: Any, r: OutRecord) -> bool:
    return (
        batch.append(timestamp=r.timestamp_ms, key=r.key, value=r.value, headers=list(r.headers))
        is not None
    )


async def _send_one(producer: AIOKafkaProducer, r: OutRecord, partition: int) -> Any:
    return await producer.send(
        r.topic,
        r.value,
        key=r.key,
        partition=partition,
        headers=list(r.headers),
        timestamp_ms=r.timestamp_ms,
    )


class KafkaProducerClient:
    """A plain idempotent producer (``streamrules produce``): send, then ``flush``."""

    def __init__(self, settings: Settings, *, linger_ms: int = 10) -> None:
        self.settings = settings
        self.linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> KafkaProducerClient:
        p = AIOKafkaProducer(
            client_id=f"{self.settings.client_id}-produce",
            acks="all",
            enable_idempotence=True,
            linger_ms=self.linger_ms,
            **client_options(self.settings),
        )
        try:
            await p.start()
        except KafkaError as exc:
            await p.stop()
            raise await _connect_failed(self.settings, exc) from None
        self._producer = p
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, record: OutRecord) -> asyncio.Future[Any]:
        """Enqueue ``record``; the returned future resolves when the broker acknowledged."""
        assert self._producer is not None
        try:
            fut: asyncio.Future[Any] = await self._producer.send(
                record.topic,
                record.value,
                key=record.key,
                headers=list(record.headers),
                timestamp_ms=record.timestamp_ms,
            )
        except KafkaError as exc:
            if isinstance(exc, TopicAuthorizationFailedError):
                raise _send_failed(exc) from None
            raise TransportError(f"sending to {record.topic} failed: {exc}") from None
        return fut

    async def flush(self) -> None:
        assert self._producer is not None
        await self._producer.flush()


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> bytes | None:
        return next((v for k, v in self.headers if k == name), None)


async def follow(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    idle_timeout_s: float | None = None,
    read_committed: bool = True,
) -> AsyncIterator[ConsumedRecord]:
    """Every record of ``topic`` (all partitions, no consumer group), as they arrive.

    Stops after ``idle_timeout_s`` seconds without a record (None: never).
    """
    # Without a group the consumer owns every partition of the topic; where to start is
    # then the reset policy's choice.
    consumer = AIOKafkaConsumer(
        client_id=f"{settings.client_id}-tail",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        isolation_level="read_committed" if read_committed else "read_uncommitted",
        **client_options(settings),
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise await _connect_failed(settings, exc) from None
    try:
        missing, refused = await _absent_topics(settings, [topic], await consumer.topics())
        if missing:
            raise TransportError(f"topic {topic!r} does not exist on {settings.bootstrap}")
        if refused:
            raise _refused_topics(settings, refused, "READ", "tail")
        consumer.subscribe([topic])
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            try:
                got = await consumer.getmany(timeout_ms=200, max_records=1000)
            except TopicAuthorizationFailedError as exc:
                raise _read_refused(settings, exc) from None  # type: ignore[misc]
            # Each partition in offset order (the order the processor published).
            msgs = [m for _, ms in sorted(got.items(), key=lambda kv: kv[0].partition) for m in ms]
            if msgs:
                last = loop.time()
            for m in msgs:
                headers = tuple((k, bytes(v or b"")) for k, v in (m.headers or ()))
                yield ConsumedRecord(
                    m.topic, m.partition, m.offset, m.timestamp, m.key, m.value or b"", headers
                )
            if idle_timeout_s is not None and loop.time() - last >= idle_timeout_s:
                return
    finally:
        await consumer.stop()


async def record_counts(settings: Settings, topics: Collection[str]) -> dict[str, int]:
    """Records currently held per topic (end minus beginning offsets); 0 when missing."""
    consumer = AIOKafkaConsumer(
        client_id=f"{settings.client_id}-count",
        enable_auto_commit=False,
        **client_options(settings),
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise await _connect_failed(settings, exc) from None
    try:
        counts = dict.fromkeys(topics, 0)
        bootstrap, options = kafka_admin.settings_options(settings)
        states = await kafka_admin.describe_topics(bootstrap, list(topics), **options)
        tps = [KafkaTP(t, p) for t, st in states.items() for p in range(st.partitions)]
        if not tps:
            return counts
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            counts[tp.topic] += int(end[tp]) - int(begin[tp])
        return counts
    finally:
        await consumer.stop()
