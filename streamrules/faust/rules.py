"""Runtime stage, Faust: the rules as one agent of a ``faust.App``.

``attach(app, settings)`` adds to a Faust app one agent over the ``orders`` and
``incidents`` topics. Per worker, everything the agent receives goes through the same
event-time merge (``merge.EventTimeMerger``, contract section 5), the same ``Pipeline``
and the same output records (``runtime.emit``) as ``streamrules run``: the same decisions,
decision ids, keys, headers and dead letters, on the same topics.

At-least-once, with streamrules' own commits. Faust commits with empty commit metadata
(its aiokafka driver), where the plain runtime keeps its publication frontiers
(``frontier.py``); so the agent's topics are declared without Faust's acks (Faust never
commits them) and each batch, once the broker acknowledged its decisions and dead letters,
is committed with the frontiers through Faust's own consumer (the group member, in Faust's
consumer thread, so that a commit after the group moved on is refused as in the plain
runtime). A record buffered in the merge but not processed yet is never committed: when
Faust suspends the flow for a rebalance or a stop, the buffers are dropped (taken out of
Faust's set of records to wait for) and the next owner reads them again.

Working memory after an assignment is rebuilt by re-reading, as ``app.App`` does, from the
same plan (``runtime.rebuild_plan``): a ``PartitionReader`` (manual assignment, outside the
group) reads each assigned partition from as far back as its facts matter up to the group's
committed offset, through the same merge, publishing only what the committed frontiers say
was not published; the records Faust delivers meanwhile (from the committed offset on)
wait, then join the merge behind them. Chosen over a Faust table (changelog) of working
memory because it needs no second serialisation of the engine's state and gives exactly
the state ``app.App`` rebuilds; it costs a re-read of the horizon on every rebalance.

Global incidents, as the plain runtime (contract section 5): the same reader also reads
every incidents partition Faust did not assign to this worker, from where its owner
committed (lowered to the horizon) and then on, in the same event-time merge, so that
``payments_hold`` sees every outage whichever worker holds the order. Publication is
decided as in ``app.App`` (``runtime.publishable``): a decision on incidents alone by the
owner of the incidents partition its key hashes to, the others by the worker that fired
them, dead letters by their record's owner. Exactly-once is not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import faust
from faust.types import TP

from streamrules.app import AppStats
from streamrules.codec import Event, Record
from streamrules.codec.decode import wall_clock_ms
from streamrules.config import Settings
from streamrules.errors import ConfigError, DecodeError
from streamrules.frontier import Frontier, commit_points
from streamrules.merge import Buffered, EventTimeMerger
from streamrules.metrics import Metrics
from streamrules.pipeline import DeadLetter
from streamrules.runtime import BatchOutput, new_decoder, new_pipeline, process_one, rebuild_plan
from streamrules.transport.base import OutRecord, TopicPartition
from streamrules.transport.kafka import (
    PROBE_INTERVAL_S,
    broker_answers,
    commit_offsets,
    partition_for_key,
)
from streamrules.transport.kafka_output import OutputProducer
from streamrules.transport.kafka_reader import PartitionReader

__all__ = ["FaustRules", "attach", "build_app", "faust_broker_url", "new_app"]

log = logging.getLogger(__name__)

# Events processed between two yields to the event loop (heartbeats, fetches).
_CHUNK = 200
# Longest sleep of the driver between looks at the merge and at Faust's flow control.
_TICK_S = 0.05
_REBUILD_FETCH_MS = 200
# A pause in the agent's input this long ends the gathering of a batch.
_GATHER_S = 0.005
# The longest a batch gathers while input keeps coming (a backlog): about a fetch's worth.
_GATHER_MAX_MS = 100
# The agent works itself once this many batches are buffered (bounded memory).
_BUFFERED_BATCHES = 20
AGENT_NAME = "streamrules-rules"

# One merged item: the decoded event (or the dead letter it is) and the Faust event that
# delivered it (None: read by the PartitionReader: a rebuild's re-read, or a global
# incidents partition).
_Item = tuple[Event | DeadLetter, Any]


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def faust_broker_url(settings: Settings) -> str:
    """``host:port,host:port`` -> Faust's ``kafka://host:port;host:port``."""
    hosts = [h.strip() for h in settings.bootstrap.split(",") if h.strip()]
    return ";".join(f"kafka://{h}" for h in hosts)


class FaustRules:
    """The rules processor inside a Faust app (see the module docstring)."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = _monotonic_ms,
        wall_clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        if settings.exactly_once:
            raise ConfigError(
                "exactly_once: not offered by the faust runtime (use --runtime aiokafka)"
            )
        self.app = app
        # Faust's consumer group is the app's id: the rebuild reads that group's offsets.
        settings = dataclasses.replace(settings, group_id=str(app.conf.id))
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.stats = AppStats()
        self.pipeline = new_pipeline(settings)  # fails early on bad rules (ConfigError)
        self._decoder = new_decoder(settings, wall_clock)
        self._merger: EventTimeMerger[_Item] = EventTimeMerger(settings.idle_ms)
        self._inputs = (settings.orders_topic, settings.incidents_topic)
        self._lock = asyncio.Lock()
        # Held around every use of the reader's position (seeks and fetches): the global
        # reader task and a rebuild share the reader.
        self._read_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._assigned: frozenset[TopicPartition] = frozenset()
        # The incidents partitions Faust did not assign here, read by the reader.
        self._global: frozenset[TopicPartition] = frozenset()
        self._counts: dict[str, int] = {}  # partitions per input topic (ownership)
        self._generation = 0
        # True from an assignment until its rebuild is done: Faust's events wait in
        # _pending meanwhile (they come after the re-read records of their partition).
        self._rebuilding = True
        self._pending: list[Any] = []
        self._resume: dict[TopicPartition, int] = {}  # committed offsets of owned partitions
        self._committed: dict[TopicPartition, int] = {}
        self._started_at: dict[TopicPartition, int] = {}  # where the rebuild read from
        self._processed: dict[TopicPartition, int] = {}  # next offset to process
        # Publication frontiers (frontier.py) of the owned partitions: as the rebuild found
        # them committed (what the previous owners published), and as committed since.
        self._inherited: dict[TopicPartition, Frontier] = {}
        self._frontiers: dict[TopicPartition, Frontier] = {}
        self._next: dict[TopicPartition, int] = {}  # next offset expected per partition
        self._end: dict[TopicPartition, int] = {}  # end offsets seen at the rebuild
        self._stream: Any = None
        self._reader: PartitionReader | None = None
        # Streamrules' own producer, not Faust's: the plain runtime's batches per partition
        # (Faust's producer sends a request per record when each send is awaited).
        self._output: OutputProducer | None = None
        self._rebuild_task: asyncio.Task[None] | None = None
        self._driver: asyncio.Task[None] | None = None
        self._global_reader: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[None] | None = None
        self.broker_reachable = True  # as the reader's probe last found it (/readyz)
        self.last_activity_ms = clock()
        self._received = 0  # events the agent received (the driver's gathering watches it)
        self._delivered = 0  # records in the merge that Faust delivered (not re-read)
        self.batches = 0
        # acks=False: Faust never commits these topics (its commits carry no metadata);
        # each batch is committed here, with the frontiers.
        topic = app.topic(*self._inputs, key_serializer="raw", value_serializer="raw", acks=False)
        self.agent = app.agent(topic, name=AGENT_NAME)(self._consume)
        # mode's stubs want a keyword-only `signal`; the handlers take it in **kwargs.
        app.on_partitions_assigned.connect(self._on_assigned, weak=False)  # type: ignore[arg-type]
        app.on_partitions_revoked.connect(self._on_revoked, weak=False)  # type: ignore[arg-type]
        app.on_before_shutdown.connect(self._on_shutdown, weak=False)  # type: ignore[arg-type]

    # -- Faust's side ----------------------------------------------------------------
    async def _consume(self, stream: Any) -> None:
        """The agent: buffer every event, process what the merge releases."""
        stream = stream.noack()
        self._stream = stream
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive(), name="streamrules-faust-drive")
        if self._global_reader is None or self._global_reader.done():
            self._global_reader = asyncio.create_task(
                self._read_global(), name="streamrules-faust-global"
            )
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe(), name="streamrules-faust-probe")
        bound = _BUFFERED_BATCHES * self.settings.batch_size
        async for event in stream.events():
            self._on_event(event)
            merger = self._merger
            if merger.buffered() >= bound and not self._rebuilding and merger.ready(self.clock()):
                # Work here too, not only in the driver, so that the buffers stay bounded:
                # Faust's fetcher waits for the agent meanwhile.
                async with self._lock:
                    await self._work()
            else:
                self._wake.set()

    def _on_event(self, event: Any) -> None:
        self._received += 1
        self.last_activity_ms = self.clock()
        message = event.message
        tp = (message.topic, message.partition)
        if tp not in self._assigned:
            # Not ours (any more): its owner reads it from the committed offset.
            self._forget([event])
            return
        if self._rebuilding:
            self._pending.append(event)
            return
        self._add(event)

    async def _on_assigned(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        # The signal's receivers are called as (sender, assigned, signal=...).
        assigned: Iterable[Any] = args[0] if args else kwargs.get("assigned", ())
        mine = frozenset((tp.topic, tp.partition) for tp in assigned if tp.topic in self._inputs)
        self._generation += 1
        self._assigned = mine
        self._rebuilding = True
        self._pending = []
        if self._rebuild_task is not None and not self._rebuild_task.done():
            self._rebuild_task.cancel()
        log.info("partitions assigned: %s", _names(mine))
        self.metrics.rebalance(mine)
        self._rebuild_task = asyncio.create_task(
            self._rebuild(mine, self._generation), name="streamrules-faust-rebuild"
        )

    async def _on_revoked(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Nothing is processed, published or committed from here to the next assignment
        (Faust sends this once the records it delivered were processed or forgotten)."""
        # A rebuild in progress stops at once (its next look at the generation), and the
        # one running is cancelled: the next assignment starts another.
        self._generation += 1
        self._rebuilding = True
        if self._rebuild_task is not None and not self._rebuild_task.done():
            self._rebuild_task.cancel()
        async with self._lock:  # the batch in flight is delivered and committed first
            self._forget(self._pending)
            self._pending = []
            self._forget([b.item[1] for b in self._merger.drain()])
            self._merger.clear()
            self._delivered = 0
            self._assigned = frozenset()
            self._global = frozenset()

    def _flow_active(self) -> bool:
        return bool(self.app.flow_control.is_active())

    async def _drive(self) -> None:
        """Process what the merge releases when an idle wait ends (the agent processes what
        new input releases); drop the buffers when Faust stops the flow."""
        while True:
            wait = self._merger.wait_ms(self.clock())
            timeout = _TICK_S if wait is None else min(_TICK_S, max(wait, 1) / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if not self._flow_active():
                # Only what Faust delivered needs forgetting: records a rebuild re-read
                # (before the flow resumes after an assignment) stay where they are.
                if self._delivered or self._pending:
                    async with self._lock:
                        if self._delivered or self._pending:
                            self._drop_buffers()
                continue
            if self._rebuilding:
                continue
            await self._gather()
            async with self._lock:
                await self._work(once=True)

    async def _read_global(self) -> None:
        """Feed the merge with the incidents partitions Faust did not assign here, from
        where the rebuild left them; a partition holding a batch's worth waits."""
        batch = self.settings.batch_size
        while True:
            generation = self._generation
            wanted = [tp for tp in self._global if self._merger.buffered(tp) < batch]
            if self._rebuilding or not wanted or not self._flow_active():
                await asyncio.sleep(_TICK_S)
                continue
            reader = await self._reader_started()
            async with self._read_lock:
                if generation != self._generation or self._rebuilding:
                    continue
                records = await reader.fetch(_REBUILD_FETCH_MS, batch, wanted)
            async with self._lock:
                if generation != self._generation or self._rebuilding:
                    continue  # the rebuild seeks again
                for r in records:
                    if r.offset >= self._next.get((r.topic, r.partition), 0):
                        self._buffer(r, None)
                for tp in self._global:
                    self._merger.set_behind(tp, self._behind(tp))
            if records:
                self.last_activity_ms = self.clock()
                self._wake.set()

    async def _probe(self) -> None:
        """The plain runtime's broker probe, through the reader: log and count the moments
        the broker stops and starts answering (``streamrules_broker_up``, ``/readyz``)."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            if self._reader is None:
                continue
            up = await broker_answers(self._reader.consumer)
            if up == self.broker_reachable:
                continue
            self.broker_reachable = up
            self.metrics.broker_up(up)
            if up:
                log.info("broker reachable again")
            else:
                log.warning(
                    "broker unreachable at %s: processing pauses, nothing is lost; retrying",
                    self.settings.bootstrap,
                )

    async def _gather(self) -> None:
        """Let a burst of input gather into one batch before working on it.

        Faust hands the agent one event at a time, and a partition the merge waits for
        trickles in with the others, so without this each batch would be the few records
        each arrival releases, each with a produce and a commit round trip. Waits while
        events keep arriving or the broker is known to hold more, up to ``_GATHER_MAX_MS``
        (or ``batch_max_ms``); a pause in live traffic ends it at once.
        """
        until = self.clock() + min(self.settings.batch_max_ms, _GATHER_MAX_MS)
        while self.clock() < until:
            seen = self._received
            await asyncio.sleep(_GATHER_S)
            if self._received == seen and not any(self._behind(tp) for tp in self._assigned):
                return  # a pause, and nothing known to be on the way: live traffic

    def _forget(self, events: Iterable[Any]) -> None:
        """Take Faust events out of the consumer's unacked set (Faust's rebalance and
        stop wait for that set to empty); their offsets are committed here, or not at
        all (read again by the next owner)."""
        unacked = getattr(self.app.consumer, "_unacked_messages", None)
        if unacked is None:
            return
        for event in events:
            if event is not None:
                unacked.discard(event.message)

    def idle_ms(self) -> int | None:
        """Processing time since the last input, while all input is processed and nothing
        is known to wait on the broker (None: busy, rebuilding or behind)."""
        if self._rebuilding or self._merger.buffered() or not self._assigned:
            return None
        if any(self._behind(tp) for tp in self._assigned | self._global):
            self.last_activity_ms = self.clock()
            return None
        return self.clock() - self.last_activity_ms

    def _drop_buffers(self) -> None:
        """Forget every record delivered but not processed, without committing it.

        Faust's rebalance and stop wait until each record it delivered is acked or
        forgotten (``Consumer.wait_empty``); so they leave Faust's set of unacked messages
        (its ``WeakSet`` cannot forget them by itself: its own stream iterator keeps the
        last one referenced), and whoever owns the partition next reads them again from
        the committed offset.
        """
        self._forget([b.item[1] for b in self._merger.drain()] + self._pending)
        self._merger.clear()
        self._delivered = 0
        self._pending = []
        self._rebuilding = True

    # -- the merge -------------------------------------------------------------------
    def _add(self, event: Any) -> None:
        m = event.message
        tp = (m.topic, m.partition)
        if m.offset < self._next.get(tp, 0):
            self._forget([event])
            return  # delivered twice (Faust re-seeks to the committed offset): seen
        headers = m.headers
        if headers and not isinstance(headers, list | tuple):
            headers = list(headers.items())
        record = Record(
            m.topic,
            m.partition,
            m.offset,
            m.key,
            m.value or b"",
            tuple((k, bytes(v or b"")) for k, v in headers) if headers else (),
        )
        self._buffer(record, event)

    def _buffer(self, record: Record, event: Any) -> None:
        tp = (record.topic, record.partition)
        self.metrics.records_in(record.topic, record.partition, 1)
        try:
            decoded = self._decoder.decode(record)
        except DecodeError as exc:
            dead = DeadLetter(record, exc.reason, exc.message)
            self._merger.add(Buffered(None, *tp, record.offset, (dead, event)))
        else:
            self.metrics.decoded(1)
            self._merger.add(Buffered(decoded.ts_ms, *tp, record.offset, (decoded, event)))
        self._next[tp] = record.offset + 1
        self._merger.set_behind(tp, self._behind(tp))
        if event is not None:
            self._delivered += 1

    def _behind(self, tp: TopicPartition) -> bool:
        """Whether the broker holds records of ``tp`` that are not buffered yet."""
        end = self._end.get(tp, 0)
        hw: int | None
        if tp in self._global:
            hw = self._reader.highwater(tp) if self._reader is not None else None
        else:
            try:
                hw = int(self.app.consumer.highwater(TP(tp[0], tp[1])))
            except Exception:  # unknown before Faust fetched the partition
                hw = None
        if hw is not None:
            end = max(end, hw)
        return self._next.get(tp, 0) < end

    def _lag(self, tp: TopicPartition) -> int:
        """Records of ``tp`` on the broker not processed yet (buffered ones included)."""
        end = self._end.get(tp, 0)
        try:
            hw = self.app.consumer.highwater(TP(tp[0], tp[1]))
        except Exception:  # unknown before Faust fetched the partition
            hw = None
        if hw is not None:
            end = max(end, int(hw))
        done = self._processed.get(tp, self._committed.get(tp, 0))
        return max(0, end - done)

    def readiness(self) -> dict[str, bool]:
        """The checks of ``/readyz`` (all true: ready), on the event loop, as `run`'s:
        partitions assigned, working memory rebuilt, broker reachable."""
        assigned = bool(self._assigned)
        return {
            "assigned": assigned,
            "rebuilt": assigned and not self._rebuilding,
            "broker": self.broker_reachable,
        }

    def partition_of(self, topic: str, key: bytes) -> int:
        """The partition of ``topic`` that ``key`` goes to (the default partitioner)."""
        return partition_for_key(key, self._counts.get(topic, 1))

    async def _work(self, *, once: bool = False) -> None:
        """Process batches while the merge releases records, or one (caller holds the
        lock)."""
        merger = self._merger
        for tp in self._assigned | self._global:
            merger.set_behind(tp, self._behind(tp))
        while merger.ready(self.clock()):
            await self._step()
            if once:
                return

    async def _step(self) -> None:
        """Process at most one batch of merged records, deliver its output, then commit."""
        t0 = time.perf_counter()
        pipeline, merger, clock = self.pipeline, self._merger, self.clock
        limit = self.settings.batch_size
        deadline = clock() + self.settings.batch_max_ms
        owned = self._assigned
        batch = BatchOutput()
        events: list[Any] = []
        done = 0
        while done < limit:
            b = merger.pop(clock())
            if b is None:
                break
            tp = (b.topic, b.partition)
            item, event = b.item
            process_one(
                self.settings,
                self.stats,
                self.metrics,
                pipeline,
                item,
                tp,
                b.offset,
                b.ts_ms,
                owned,
                self._resume,
                self.partition_of,
                self._inherited,
                batch,
            )
            self._processed[tp] = b.offset + 1
            if event is not None:
                events.append(event)
                self._delivered -= 1
            done += 1
            if done % _CHUNK == 0:
                await asyncio.sleep(0)
                if clock() >= deadline:
                    break
        if batch.out:
            await self._deliver(batch.out)
            if batch.causes:
                self.metrics.delivered(batch.decided, batch.causes)
        if done:
            # As `run`: each batch is committed, so a crash repeats at most the batch in
            # flight; every owned partition carries this worker's frontier.
            own = Frontier(pipeline.watermark_ms, dict(self._processed))
            points = commit_points(own, owned, self._committed, self._started_at, self._frontiers)
            await self._commit(points)
            self._committed.update({tp: off for tp, (off, _meta) in points.items()})
        self._forget(events)
        if done:
            self.batches += 1
            self.last_activity_ms = clock()
            wm = pipeline.watermark_ms
            if wm is not None:
                self.metrics.watermark(wm)
                # As `run`'s: never ahead of the merged watermark.
                self.metrics.partition_watermarks(
                    {tp: min(ts, wm) for tp, ts in batch.stamps.items()}
                )
            for tp in owned:
                self.metrics.lag(tp[0], tp[1], self._lag(tp))
            self.metrics.batch_latency(time.perf_counter() - t0)

    async def _deliver(self, out: list[OutRecord]) -> None:
        """Send every record; return once the broker acknowledged all of them."""
        if self._output is None:
            self._output = OutputProducer(self.settings)
        await self._output.send_all(out)

    async def _commit(self, points: Mapping[TopicPartition, tuple[int, str]]) -> None:
        """Commit offsets with frontiers as Faust's group member: its aiokafka consumer, in
        the thread Faust runs it in (a commit is valid only from the member)."""
        thread = getattr(self.app.consumer, "_thread", None)
        ensure = getattr(thread, "_ensure_consumer", None)
        if thread is None or ensure is None:
            raise ConfigError(
                "the faust runtime needs Faust's aiokafka driver (broker kafka://...)"
            )
        await thread.call_thread(commit_offsets, ensure(), self.settings, dict(points))

    # -- rebuilding working memory ---------------------------------------------------
    async def _reader_started(self) -> PartitionReader:
        if self._reader is None:
            reader = PartitionReader(self.settings)
            await reader.start()
            self._reader = reader
        return self._reader

    async def _rebuild(self, assigned: frozenset[TopicPartition], generation: int) -> None:
        try:
            async with self._lock:
                if generation != self._generation:
                    return
                await self._rebuild_locked(assigned, generation)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("rebuilding working memory failed: stopping the worker")
            await self.app.crash(RuntimeError("streamrules: the rebuild failed"))

    async def _rebuild_locked(self, assigned: frozenset[TopicPartition], generation: int) -> None:
        started = time.perf_counter()
        self.pipeline = new_pipeline(self.settings)
        self.metrics.pipeline(self.pipeline)
        merger = self._merger
        self._delivered = 0
        self._next, self._processed = {}, {}
        if not assigned:
            # A worker with no partition publishes nothing: it reads no global ones either.
            self._global = frozenset()
            merger.assign(assigned)
            merger.clear()
            self._resume, self._committed, self._end = {}, {}, {}
            self._inherited, self._frontiers, self._started_at = {}, {}, {}
            self._finish_rebuild(generation)
            return
        reader = await self._reader_started()
        incidents = self.settings.incidents_topic
        self._counts = await reader.partition_counts(self._inputs)
        every = {(incidents, p) for p in range(self._counts.get(incidents, 0))}
        self._global = glob = frozenset(every - assigned)
        inputs = assigned | glob
        merger.assign(inputs)
        merger.clear()
        async with self._read_lock:
            reader.assign(inputs)
        plan = await rebuild_plan(reader, self.settings, assigned, inputs)
        start = plan.start
        self._committed = {tp: c for tp, c in plan.committed.items() if tp in assigned}
        resume = self._resume = {tp: c for tp, c in self._committed.items() if c > 0}
        self._inherited = plan.inherited
        self._frontiers = dict(plan.inherited)
        self._started_at = start
        self._end = await reader.end(inputs)
        todo = {tp for tp in assigned if start[tp] < resume.get(tp, 0)}
        for tp in inputs:
            # Faust delivers an owned partition from its committed offset on.
            self._next[tp] = start[tp] if tp in todo or tp in glob else resume.get(tp, start[tp])
        async with self._read_lock:
            for tp in todo | glob:
                reader.seek(tp, start[tp])
            reader.pause(assigned - todo)
        replay = sum(resume[tp] - start[tp] for tp in todo)
        self.stats.rebuilds += 1
        self.stats.rebuild_records += replay
        self.metrics.rebuild(replay)
        log.info(
            "rebuilding working memory: re-reading %d records (and %d global partitions)",
            replay,
            len(glob),
        )
        batch = self.settings.batch_size
        while todo:
            if generation != self._generation:
                return
            wanted = todo | {tp for tp in glob if merger.buffered(tp) < batch}
            async with self._read_lock:
                records = await reader.fetch(_REBUILD_FETCH_MS, batch, wanted)
            for r in records:
                tp = (r.topic, r.partition)
                if tp in glob:
                    self._buffer(r, None)
                    continue
                if tp not in todo or r.offset >= resume[tp]:
                    continue
                self._buffer(r, None)
                if r.offset + 1 >= resume[tp]:
                    todo.discard(tp)
            for tp in list(todo):
                if await reader.position(tp) >= resume[tp]:
                    todo.discard(tp)  # past the end without a record: transaction markers
            for tp in inputs:
                merger.set_behind(tp, tp in todo or self._behind(tp))
            while merger.ready(self.clock()):
                await self._step()
        async with self._read_lock:
            reader.pause(assigned)  # Faust reads them on from here
        self._finish_rebuild(generation)
        self.metrics.rebuild_done(time.perf_counter() - started)

    def _finish_rebuild(self, generation: int) -> None:
        if generation != self._generation:
            return
        for tp in self._assigned:
            self._next.setdefault(tp, self._resume.get(tp, 0))
        pending, self._pending = self._pending, []
        self._rebuilding = False
        for event in pending:
            self._add(event)
        self.last_activity_ms = self.clock()
        self._wake.set()
        log.info("working memory rebuilt: processing %s", _names(self._assigned))

    async def _on_shutdown(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the helper tasks and the rebuild's reader (the app stops the rest)."""
        log.info(
            "summary: %d records in %d batches, %d decisions, %d dead letters",
            self.stats.records,
            self.batches,
            self.stats.decisions,
            self.stats.dead_letters,
        )
        for task in (self._driver, self._rebuild_task, self._global_reader, self._prober):
            if task is not None and not task.done():
                task.cancel()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.stop()
        if self._output is not None:
            output, self._output = self._output, None
            await output.stop()


def _names(tps: Collection[TopicPartition]) -> str:
    return ", ".join(f"{t}-{p}" for t, p in sorted(tps)) or "(none)"


def attach(app: faust.App, settings: Settings, *, metrics: Metrics | None = None) -> FaustRules:
    """Add the rules of ``settings`` to ``app``: one agent over the input topics."""
    return FaustRules(app, settings, metrics=metrics)


def build_app(settings: Settings, **conf: Any) -> faust.App:
    """A Faust app for ``settings`` with the rules attached (see ``new_app``)."""
    app = new_app(settings, **conf)
    attach(app, settings)
    return app


def new_app(settings: Settings, **conf: Any) -> faust.App:
    """A Faust app for ``settings``, its id the consumer group, no agents yet.

    Faust's web server is off (``streamrules run`` serves metrics and probes itself) and
    tables are kept in memory; ``conf`` overrides any Faust setting.
    """
    if settings.security_protocol != "PLAINTEXT":
        raise ConfigError(
            f"security_protocol {settings.security_protocol}: the faust runtime connects "
            "with PLAINTEXT only so far (use --runtime aiokafka, or attach() the rules to a "
            "faust.App configured with broker_credentials)"
        )
    options: dict[str, Any] = {
        "broker": faust_broker_url(settings),
        "broker_client_id": settings.client_id,
        # aiokafka's defaults, as the plain runtime: a killed worker's partitions move
        # after 10 s, not Faust's 60.
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "web_enabled": False,
        "store": "memory://",
    }
    options.update(conf)
    return faust.App(settings.group_id, **options)
