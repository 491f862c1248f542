"""``streamrules demo``: the whole flow on one machine, from nothing, in a minute or two.

1. a broker: the configured cluster, or else the local one (``streamrules.localkafka``),
   started if it is not running (and stopped at the end unless ``--keep-broker``);
2. the topics of ``topics/topics.toml`` (created as ``topics apply`` would); when they
   already hold records (an earlier demo), the demo uses fresh ``-demo-<id>`` topics
   instead of touching them;
3. a seeded stream of orders and incidents (``streamrules.generate``: a few simulated
   days, bursts, a Friday, outages, storms, some malformed records), produced with a
   progress bar, each record stamped with its event time;
4. the processor (the same ``App`` as ``streamrules run``, under a fresh consumer group)
   until the input is consumed, with a live table of decisions per rule, and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import logging
import time
import uuid
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from streamrules import config
from streamrules.codec import parse_rfc3339
from streamrules.errors import ConfigError
from streamrules.generate import recent_start
from streamrules.logging import configure_logging

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="local broker + topics + a generated stream + the processor, with a live view",
        description="Start a local Kafka broker (unless bootstrap servers are configured), "
        "create the topics, produce a seeded stream of orders and incidents, run the "
        "processor until the stream is consumed, and show the decisions per rule.",
    )
    parser.add_argument("--days", type=float, default=3.0, help="simulated days (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    parser.add_argument(
        "--start",
        type=_parse_start,
        default=None,
        help="event time of the stream's start, RFC 3339 (default: the latest Thursday "
        "00:00 UTC from which the whole stream is over by now, so that the stream has a "
        "Friday, passes the service's future check and is recent enough for the topics' "
        "retention)",
    )
    parser.add_argument(
        "--orders-per-hour", type=float, default=600.0, help="mean order rate (default 600)"
    )
    parser.add_argument(
        "--malformed-ratio",
        type=float,
        default=0.002,
        help="share of malformed order records (default 0.002)",
    )
    parser.add_argument(
        "--keep-broker",
        action="store_true",
        help="leave the local broker running at the end (stop it: streamrules broker stop)",
    )
    # Not the service's logging or metrics settings: the demo's live view owns the terminal.
    config.add_arguments(
        parser,
        (*config.CONNECTION_SETTINGS, *config.TOPIC_SETTINGS, *config.PROCESSING_SETTINGS),
    )
    parser.set_defaults(func=run)


def _parse_start(text: str) -> datetime.datetime:
    try:
        return parse_rfc3339(text)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time with a zone: {text!r}") from exc


def stream_start(
    now: datetime.datetime, days: float, given: datetime.datetime | None, max_future_ms: int
) -> datetime.datetime:
    """The demo stream's start: ``given``, or the latest Thursday 00:00 UTC from which a
    stream of ``days`` ends by ``now``.

    The service dead-letters events more than ``max_future_ms`` ahead of the wall clock
    (``future_event``): a stream that ends in the future would lose its last events, and
    a ``given`` start that makes one is refused (``ConfigError``).
    """
    span = datetime.timedelta(days=days)
    if given is None:
        return recent_start(now, days)
    end = given + span
    if max_future_ms and end > now + datetime.timedelta(milliseconds=max_future_ms):
        raise ConfigError(
            f"--start {given.isoformat()}: the stream would end at {end.isoformat()}, more "
            f"than max_future_ms ({max_future_ms} ms) after now; the service would "
            "dead-letter those events as future_event"
        )
    return given


def run(args: argparse.Namespace) -> int:
    settings = config.load_settings(args)
    if not 0 < args.days <= 60:
        raise ConfigError(f"--days must be in (0, 60], got {args.days}")
    args.start = stream_start(
        datetime.datetime.now(datetime.UTC), args.days, args.start, settings.service_max_future_ms
    )
    if not 0 <= args.malformed_ratio < 1:
        raise ConfigError(f"--malformed-ratio must be in [0, 1), got {args.malformed_ratio}")
    # The live view owns the terminal: only warnings go to the log.
    configure_logging("WARNING", "text")
    # A fresh broker's group coordinator takes a moment: aiokafka warns while it waits.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    # ... and logs the wait as an ERROR once; the consumer retries by itself.
    logging.getLogger("aiokafka.consumer.group_coordinator").setLevel(logging.CRITICAL)
    console = Console()
    t0 = time.monotonic()
    broker: Any = None
    if settings.bootstrap_servers is None:
        from streamrules.localkafka import BrokerConfig, LocalKafka

        broker = LocalKafka(BrokerConfig.from_env())
        with console.status("starting the local Kafka broker (first time: Maven fetches jars)"):
            started = broker.start()
        if started.already_running:
            console.print(f"local broker already running on {started.bootstrap_servers}")
            broker = None  # not ours to stop
        else:
            console.print(
                f"local broker started on {started.bootstrap_servers} in {started.seconds:.1f} s"
            )
        settings = config.load_settings(args, bootstrap_servers=started.bootstrap_servers)
    try:
        return asyncio.run(_demo(settings, args, console, t0))
    finally:
        if broker is not None and not args.keep_broker:
            with console.status("stopping the local broker"):
                broker.stop()
        elif broker is not None:
            console.print("broker left running; stop it with: streamrules broker stop")


async def _demo(
    settings: config.Settings, args: argparse.Namespace, console: Console, t0: float
) -> int:
    from streamrules.app import App
    from streamrules.generate import generate_events
    from streamrules.transport.base import OutRecord
    from streamrules.transport.kafka import (
        KafkaProducerClient,
        KafkaTransport,
        record_counts,
        wait_acked,
    )

    run_id = uuid.uuid4().hex[:8]
    names = settings.topic_names
    counts = await record_counts(settings, list(names.values()))
    if any(counts.values()):
        names = {k: f"{v}-demo-{run_id}" for k, v in names.items()}
        console.print("the topics hold records already: this demo uses fresh ones")
    # A fresh group: the demo processes what it produced, whatever ran before.
    settings = dataclasses.replace(
        settings,
        orders_topic=names["orders"],
        incidents_topic=names["incidents"],
        decisions_topic=names["decisions"],
        dlq_topic=names["decisions.dlq"],
        group_id=f"{settings.group_id}-demo-{run_id}",
    )
    await _apply_topics(settings)
    console.print(f"topics: {', '.join(settings.topic_names.values())}")

    items = list(
        generate_events(
            args.seed,
            start=args.start,
            days=args.days,
            orders_per_hour=args.orders_per_hour,
            malformed_ratio=args.malformed_ratio,
        )
    )
    topic_of = {"orders": settings.orders_topic, "incidents": settings.incidents_topic}
    t_produce = time.monotonic()
    progress = Progress(
        TextColumn("producing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("produce", total=len(items))
        async with KafkaProducerClient(settings) as producer:
            pending = []
            stamp = 0
            for topic, key, value in items:
                stamp = _event_time(value, stamp)
                pending.append(
                    await producer.send(OutRecord(topic_of[topic], key, value, (), stamp))
                )
                if len(pending) >= 2000:
                    await wait_acked(pending)
                    progress.advance(task, len(pending))
                    pending.clear()
            await wait_acked(pending)
            progress.advance(task, len(pending))
    produce_s = time.monotonic() - t_produce

    app = App(settings, KafkaTransport(settings), stop_when_idle_ms=3000)
    t_run = time.monotonic()
    runner = asyncio.create_task(app.run())
    with Live(_table(app, len(items), time.monotonic() - t_run), console=console) as live:
        while not runner.done():
            await asyncio.wait({runner}, timeout=0.25)
            live.update(_table(app, len(items), time.monotonic() - t_run))
    await runner
    run_s = time.monotonic() - t_run
    console.print(_summary(app, len(items), produce_s, run_s, time.monotonic() - t0))
    console.print(
        f"read them again: streamrules tail --decisions-topic {settings.decisions_topic} "
        f"--bootstrap-servers {settings.bootstrap} --from-beginning --timeout 2"
    )
    return 0


async def _apply_topics(settings: config.Settings) -> None:
    from streamrules.topics import load_topics, plan
    from streamrules.transport import kafka_admin

    wanted = load_topics().renamed(settings.topic_names)
    options = settings.kafka_options()
    bootstrap = options.pop("bootstrap_servers")
    current = await kafka_admin.describe_topics(bootstrap, wanted.names, **options)
    todo = plan(wanted.topics, current)
    if todo.has_changes:
        await kafka_admin.apply_plan(bootstrap, todo, **options)
    await kafka_admin.wait_for_topics(bootstrap, list(wanted.names), **options)


def _event_time(value: bytes, previous: int) -> int:
    """The record timestamp: the event's time, or the previous one for a bad record."""
    try:
        ts = orjson.loads(value).get("ts")
        return parse_rfc3339(ts)[1] if isinstance(ts, str) else previous
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return previous


def _table(app: Any, total: int, elapsed: float) -> Table:
    stats = app.stats
    table = Table(title=f"processing: {stats.records}/{total} records, {elapsed:.1f} s")
    table.add_column("rule")
    table.add_column("decisions", justify="right")
    for rule, n in sorted(stats.decisions_by_rule.items()):
        table.add_row(rule, str(n))
    for reason, n in sorted(stats.dead_letters_by_reason.items()):
        table.add_row(f"[dim]dead letter: {reason}[/dim]", f"[dim]{n}[/dim]")
    return table


def _summary(app: Any, total: int, produce_s: float, run_s: float, wall_s: float) -> Table:
    stats = app.stats
    table = Table(title="streamrules demo: summary")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("records produced", str(total))
    table.add_row("records processed", str(stats.records))
    table.add_row("decisions", str(stats.decisions))
    for rule, n in sorted(stats.decisions_by_rule.items()):
        table.add_row(f"  {rule}", str(n))
    table.add_row("dead letters", str(stats.dead_letters))
    for reason, n in sorted(stats.dead_letters_by_reason.items()):
        table.add_row(f"  {reason}", str(n))
    table.add_row("produce time", f"{produce_s:.1f} s")
    rate = stats.records / run_s if run_s > 0 else 0.0
    table.add_row("processing time", f"{run_s:.1f} s ({rate:,.0f} records/s)")
    table.add_row("total wall time", f"{wall_s:.1f} s")
    return table
