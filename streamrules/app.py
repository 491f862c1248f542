"""The service: transport -> event-time merge -> pipeline -> transport, with commits.

One loop: fetch (``getmany``, only the partitions holding less than a batch), decode each
record to learn its event time, buffer it in the partition merge (``merge.py``), process
at most one batch (``batch_size`` records, ``batch_max_ms``) of the records the merge
releases through the pipeline one at a time, publish the decisions and dead letters, and
commit the offsets of the processed records once the broker acknowledged that output (or
in the same transaction, exactly-once: the transport decides). A backlog is worked off
batch by batch, never held in memory at once.

Rebalances. The transport calls ``on_revoked`` before partitions go away; since a batch is
processed, delivered and committed under one lock, taking that lock means everything
processed so far is committed. After any assignment, working memory is rebuilt before
anything new is published: a fresh pipeline re-reads each partition it reads from a point
of record time before the newest committed watermark, as far back as facts of its topic
can matter (``runtime.lower_to_horizons``), publishing nothing that the frontiers
committed with the partitions say was published (``frontier.py``).

Scale-out. Every instance reads every incidents partition (its own through the group,
the others through the transport's group-less consumer: ``transport.inputs()``), so
incidents are global facts. A decision on global facts alone that no order caused is
published only by the owner of the incidents partition its key hashes to; any other
decision only this instance can fire; a dead letter is its record partition owner's.

CPU-heavy rule work runs in chunks with ``await asyncio.sleep(0)`` between them so that
the consumer's heartbeats and fetches (tasks on the same loop) keep running. A watcher
task reports the transport's view of the broker (unreachable, back after N s) in the logs
and metrics, also while a batch waits on the broker. Timeouts here
(the merge's idle wait, ``stop_when_idle``) are processing time; event time comes only from
the events.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamrules.codec import Event, Record
from streamrules.codec.decode import wall_clock_ms
from streamrules.config import Settings
from streamrules.errors import DecodeError
from streamrules.frontier import Frontier, commit_points
from streamrules.merge import Buffered, EventTimeMerger
from streamrules.metrics import Metrics
from streamrules.pipeline import (
    DeadLetter,
    Pipeline,
    freeze_startup_objects,
    thaw_startup_objects,
)
from streamrules.runtime import (
    BatchOutput,
    new_decoder,
    new_pipeline,
    process_one,
    rebuild_plan,
)
from streamrules.transport.base import TopicPartition, Transport

__all__ = ["App", "AppStats", "describe"]

log = logging.getLogger(__name__)

# Events processed between two yields to the event loop.
_CHUNK = 200
_FETCH_TIMEOUT_MS = 200
# How often the broker's state (the transport's probe) is looked at for logs and metrics.
_WATCH_INTERVAL_S = 0.5


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(slots=True)
class AppStats:
    """Counters of this instance since start (published output only)."""

    records: int = 0
    decisions: int = 0
    dead_letters: int = 0
    suppressed: int = 0
    # Decisions on global facts only that another instance publishes (not this one's).
    not_owned: int = 0
    rebuilds: int = 0
    rebuild_records: int = 0
    decisions_by_rule: dict[str, int] = field(default_factory=dict)
    dead_letters_by_reason: dict[str, int] = field(default_factory=dict)


class App:
    """The rules processor as a Kafka (or in-memory) service."""

    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = _monotonic_ms,
        stop_when_idle_ms: int | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.stop_when_idle_ms = stop_when_idle_ms
        self.pipeline = self._new_pipeline()  # fails early on bad rules (ConfigError)
        self.stats = AppStats()
        self._merger: EventTimeMerger[Event | DeadLetter] = EventTimeMerger(settings.idle_ms)
        # The configured topic names, max_record_bytes, max_future_ms (runtime.new_decoder).
        self._decoder = new_decoder(settings, wall_clock)
        self._lock = asyncio.Lock()
        self._generation = 0
        self._needs_rebuild = True
        self._stopping = False
        self._resume: dict[TopicPartition, int] = {}
        self._processed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._last_activity: int | None = None
        # Whether the broker answers (``transport.broker_up``), as last logged and counted
        # by the broker watcher; /readyz reads it.
        self.broker_reachable = True
        self._broker_down_since: int | None = None
        # Operations (metrics): the rebuild's start (processing time) until it caught up.
        self._rebuild_started: float | None = None
        # The partitions working memory was rebuilt for, and where each was re-read from.
        self._held: frozenset[TopicPartition] = frozenset()
        self._started_at: dict[TopicPartition, int] = {}
        # Publication frontiers (frontier.py) per owned partition: as the rebuild found
        # them committed (what the previous owners published), and as committed since.
        self._inherited: dict[TopicPartition, Frontier] = {}
        self._frontiers: dict[TopicPartition, Frontier] = {}
        self.metrics.pipeline(self.pipeline)

    # -- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to finish the current batch, deliver, commit and return."""
        if not self._stopping:
            log.info("stop requested: finishing the current batch")
        self._stopping = True

    def _new_pipeline(self) -> Pipeline:
        return new_pipeline(self.settings)

    async def run(self) -> None:
        await self.transport.start(self._on_revoked, self._on_assigned)
        # Its own task: a batch can wait on the broker for the whole outage.
        watcher = asyncio.create_task(self._watch_broker(), name="streamrules-broker-watch")
        try:
            while not self._stopping:
                await self._iteration()
        finally:
            watcher.cancel()
            thaw_startup_objects()  # for in-process callers (tests): the collector as it was
            await self.transport.stop()
        log.info(
            "stopped",
            extra={
                "records": self.stats.records,
                "decisions": self.stats.decisions,
                "dead_letters": self.stats.dead_letters,
            },
        )

    async def _iteration(self) -> None:
        # One turn of the event loop per iteration at least: a fetch that finds its
        # answer at once never suspends, and the Kafka client's own tasks (heartbeats,
        # the group's join after a revocation) must not starve.
        await asyncio.sleep(0)
        if self._needs_rebuild and self.transport.assignment():
            async with self._lock:
                await self._rebuild()
        generation = self._generation
        merger = self._merger
        now = self.clock()
        if merger.ready(now):
            timeout = 0  # buffered work is waiting: take what is prefetched, no more
        else:
            wait = merger.wait_ms(now)
            timeout = _FETCH_TIMEOUT_MS if wait is None else max(1, min(wait, _FETCH_TIMEOUT_MS))
        batch = self.settings.batch_size
        # Partitions already holding a batch's worth are not fetched: a backlog waits on
        # the broker, not in this process (Kafka Streams' buffered.records.per.partition).
        wanted = merger.wanting(batch) if merger.partitions else None
        records = await self.transport.fetch(timeout, batch, wanted) if wanted != [] else []
        async with self._lock:
            if generation != self._generation or self._needs_rebuild:
                return  # fetched before a rebalance: the rebuild seeks again
            if not self.transport.assignment():
                return
            self._buffer(records)
            drain = self._idle_for_good(records)
            await self._step(drain=drain)
            while drain and merger.buffered():
                await self._step(drain=True)
            if drain:
                log.info("input idle for %d ms: stopping", self.stop_when_idle_ms)
                self._stopping = True

    async def _watch_broker(self) -> None:
        """Log and count the moments the broker becomes unreachable and reachable again."""
        while True:
            up = self.transport.broker_up()
            if up != self.broker_reachable:
                self._broker_changed(up)
            await asyncio.sleep(_WATCH_INTERVAL_S)

    def _broker_changed(self, up: bool) -> None:
        now = self.clock()
        self.broker_reachable = up
        self.metrics.broker_up(up)
        if up:
            since = self._broker_down_since
            down_s = (now - since) / 1000 if since is not None else 0.0
            log.info("broker reachable again after %.1f s", down_s, extra={"down_s": down_s})
            self._broker_down_since = None
        else:
            self._broker_down_since = now
            log.warning(
                "broker unreachable at %s: processing pauses, nothing is lost; retrying",
                self.settings.bootstrap,
            )

    def _idle_for_good(self, records: list[Record]) -> bool:
        if self.stop_when_idle_ms is None:
            return False
        now = self.clock()
        if records or self._last_activity is None:
            self._last_activity = now
            return False
        if not self.broker_reachable or any(
            self.transport.behind(tp) for tp in self.transport.inputs()
        ):
            # Input may be waiting on a broker that does not answer: not idle.
            self._last_activity = now
            return False
        return now - self._last_activity >= self.stop_when_idle_ms

    # -- operations ------------------------------------------------------------------
    def readiness(self) -> dict[str, bool]:
        """The checks of ``/readyz`` (all true: ready to serve), on the event loop."""
        assigned = bool(self.transport.assignment())
        return {
            "assigned": assigned,
            "rebuilt": assigned and not self._needs_rebuild and self._caught_up(),
            "broker": self.broker_reachable,
        }

    def _caught_up(self) -> bool:
        """Whether the rebuild re-read everything up to the committed offsets."""
        for tp, resume in self._resume.items():
            if self._processed.get(tp, 0) >= resume:
                continue
            # Nothing left to read below the committed offset (e.g. it points past a
            # transaction marker): the partition is as rebuilt as it gets.
            if self.transport.lag(tp) == 0 and not self._merger.buffered(tp):
                continue
            return False
        return True

    # -- rebalancing -----------------------------------------------------------------
    async def _on_revoked(self, tps: frozenset[TopicPartition]) -> None:
        # Taking the lock waits for the batch in flight: it is delivered and committed
        # before the partitions go.
        async with self._lock:
            self._generation += 1
            self._needs_rebuild = True
            # Fetched, not processed: no longer this instance's to process (and records
            # waiting in the merge would make the loop fetch without waiting meanwhile).
            self._merger.clear()
            log.info("partitions revoked: %s", _names(tps))

    async def _on_assigned(self, tps: frozenset[TopicPartition]) -> None:
        self._generation += 1
        self._needs_rebuild = True
        self.metrics.rebalance(tps)
        log.info("partitions assigned: %s", _names(tps))

    async def _keep(self, assigned: frozenset[TopicPartition]) -> bool:
        """After a rebalance that gave back exactly the partitions working memory holds,
        with no commit by anyone else since ours, go on where processing stopped instead
        of rebuilding (the sticky assignor keeps most partitions in place)."""
        if assigned != self._held or not assigned:
            return False
        inputs = self.transport.inputs()
        if not inputs <= self._started_at.keys():
            return False  # a global partition not read before
        committed = await self.transport.committed(assigned)
        if any(committed[tp] != self._committed.get(tp) for tp in assigned):
            return False  # another member owned them meanwhile
        self._merger.assign(inputs)
        self._merger.clear()  # fetched but not processed: fetched again
        for tp in sorted(inputs):
            self.transport.seek(tp, self._processed.get(tp, self._started_at[tp]))
        self._last_activity = self.clock()
        log.info("same partitions assigned again: working memory kept, no rebuild")
        return True

    async def _rebuild(self) -> None:
        self._needs_rebuild = False
        assigned = self.transport.assignment()
        if await self._keep(assigned):
            return
        self._rebuild_started = time.perf_counter()
        self.pipeline = self._new_pipeline()
        self.metrics.pipeline(self.pipeline)
        # The previous pipeline (if any) is garbage now; what lives from here to the
        # next rebalance (modules, rules, the network) leaves the cyclic collector's reach.
        gc.unfreeze()
        freeze_startup_objects()
        inputs = self.transport.inputs()
        self._merger.assign(inputs)
        self._merger.clear()
        self._processed = {}
        # Each partition from as far back as its topic's facts can matter, so that the work
        # follows what is live (an hour of orders), not what the topics retain.
        plan = await rebuild_plan(self.transport, self.settings, assigned, inputs)
        committed, start = plan.committed, plan.start
        self._committed = {tp: c for tp, c in committed.items() if tp in assigned}
        self._resume = {tp: c for tp, c in self._committed.items() if c > 0}
        # What the previous owners of these partitions published (their frontiers).
        self._inherited = plan.inherited
        self._frontiers = dict(self._inherited)
        for tp in sorted(inputs):
            self.transport.seek(tp, start[tp])
        self._held, self._started_at = assigned, start
        replay = sum(self._resume.get(tp, start[tp]) - start[tp] for tp in assigned)
        self.stats.rebuilds += 1
        self.stats.rebuild_records += replay
        self.metrics.rebuild(replay)
        self._last_activity = self.clock()
        log.info(
            "rebuilding working memory: re-reading %d records",
            replay,
            extra={"start": {f"{t}-{p}": o for (t, p), o in sorted(start.items())}},
        )

    # -- one batch -------------------------------------------------------------------
    def _buffer(self, records: list[Record]) -> None:
        """Decode fetched records and buffer them in the partition merge."""
        counts: dict[TopicPartition, int] = {}
        decoded = 0
        merger = self._merger
        for record in records:
            tp = (record.topic, record.partition)
            counts[tp] = counts.get(tp, 0) + 1
            try:
                event = self._decoder.decode(record)
            except DecodeError as exc:
                dead = DeadLetter(record, exc.reason, exc.message)
                merger.add(Buffered(None, *tp, record.offset, dead))
                continue
            decoded += 1
            merger.add(Buffered(event.ts_ms, *tp, record.offset, event))
        for tp, n in counts.items():
            self.metrics.records_in(tp[0], tp[1], n)
        if decoded:
            self.metrics.decoded(decoded)
        for tp in self.transport.inputs():
            merger.set_behind(tp, self.transport.behind(tp))

    async def _step(self, *, drain: bool) -> None:
        """Process at most one batch of merged records (``batch_size`` records, or what
        ``batch_max_ms`` of processing time allows), then deliver and commit it."""
        t0 = time.perf_counter()
        pipeline = self.pipeline
        merger = self._merger
        clock = self.clock
        limit = self.settings.batch_size
        deadline = clock() + self.settings.batch_max_ms
        batch = BatchOutput()
        # Taken once: a revocation waits for the lock this batch holds.
        owned = self.transport.assignment()
        partition_of = self.transport.partition_of
        done = 0
        while done < limit:
            b = merger.pop(clock())
            if b is None and drain:
                b = next(merger.drain(), None)
            if b is None:
                break
            tp = (b.topic, b.partition)
            process_one(
                self.settings,
                self.stats,
                self.metrics,
                pipeline,
                b.item,
                tp,
                b.offset,
                b.ts_ms,
                owned,
                self._resume,
                partition_of,
                self._inherited,
                batch,
            )
            self._processed[tp] = b.offset + 1
            done += 1
            if done % _CHUNK == 0:
                await asyncio.sleep(0)
                if clock() >= deadline:
                    break

        offsets: dict[TopicPartition, int] = {}
        metadata: dict[TopicPartition, str] = {}
        if done:
            # Every owned partition is committed with this instance's frontier, also those
            # whose offset did not move: the frontier did (global partitions, the clock).
            own = Frontier(pipeline.watermark_ms, dict(self._processed))
            points = commit_points(
                own,
                self.transport.assignment(),
                self._committed,
                self._started_at,
                self._frontiers,
            )
            for tp, (off, meta) in points.items():
                offsets[tp] = off
                metadata[tp] = meta
        if batch.out or offsets:
            await self.transport.deliver(batch.out, offsets, metadata)
            self._committed.update(offsets)
            if batch.causes:
                self.metrics.delivered(batch.decided, batch.causes)
        if done:
            self._last_activity = clock()
        if pipeline.watermark_ms is not None:
            self.metrics.watermark(pipeline.watermark_ms)
            # A partition's watermark: its largest event time processed, but never ahead
            # of the merged one (an event from the future is dead-lettered, not applied).
            wm = pipeline.watermark_ms
            self.metrics.partition_watermarks({tp: min(ts, wm) for tp, ts in batch.stamps.items()})
        if self._rebuild_started is not None and self._caught_up():
            self.metrics.rebuild_done(time.perf_counter() - self._rebuild_started)
            self._rebuild_started = None
        for tp in self.transport.assignment():
            lag = self.transport.lag(tp)
            if lag is not None:
                self.metrics.lag(tp[0], tp[1], lag + merger.buffered(tp))
        if done:
            self.metrics.batch_latency(time.perf_counter() - t0)


def _names(tps: frozenset[TopicPartition]) -> str:
    return ", ".join(f"{t}-{p}" for t, p in sorted(tps)) or "(none)"


def describe(stats: AppStats) -> dict[str, Any]:
    """The stats as a plain dict (for logs and the demo's summary)."""
    return {
        "records": stats.records,
        "decisions": stats.decisions,
        "dead_letters": stats.dead_letters,
        "suppressed": stats.suppressed,
        "not_owned": stats.not_owned,
        "rebuilds": stats.rebuilds,
        "decisions_by_rule": dict(sorted(stats.decisions_by_rule.items())),
        "dead_letters_by_reason": dict(sorted(stats.dead_letters_by_reason.items())),
    }
