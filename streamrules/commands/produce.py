"""``streamrules produce``: validate JSONL events and send them to their input topics.

In front of the flow, as a producer: each line is checked with the codec (the same checks
the processor makes); a valid event goes to its type's topic (``orders`` or ``incidents``,
as configured) with the contract's key (orders: ``customer_id``, incidents: ``service``)
and the event time as the record timestamp, so that the service can find points in event
time with ``offsets_for_times``. An invalid line is reported with its line number and not
sent, or, with ``--dead-letters``, sent to the dead-letter topic with the usual headers
(``source.topic`` is the input's name, ``source.partition`` -1, ``source.offset`` the line
number). A summary ends standard error; the exit status is 1 when an invalid line was not
sent (without ``--dead-letters``): with it, every line went where it was asked to, as the
demo stack's producer, whose stream has deliberate malformed lines, needs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

from streamrules import config
from streamrules.codec import DecodeError, Decoder, Record, dead_letter_headers
from streamrules.codec.schemas import event_schemas
from streamrules.errors import ConfigError
from streamrules.transport.base import OutRecord

_IN_FLIGHT = 5_000  # acknowledgements awaited in groups: bounded memory, full pipelining


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "produce",
        help="validate JSONL events and send them to their topics",
        description="Read events as JSONL (a file or - for stdin), validate each, and send "
        "it to its topic keyed as the contract says. Invalid lines are reported with their "
        "line numbers and not sent (or sent to the dead-letter topic with --dead-letters).",
    )
    parser.add_argument("file", nargs="?", default="-", metavar="FILE", help="JSONL, - = stdin")
    parser.add_argument(
        "--dead-letters",
        action="store_true",
        help="send invalid lines to the dead-letter topic instead of skipping them",
    )
    # The settings it uses (the decisions topic is not one of them).
    config.add_arguments(
        parser, (*config.CONNECTION_SETTINGS, "orders_topic", "incidents_topic", "dlq_topic")
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load_settings(args)
    with ExitStack() as stack:
        if args.file == "-":
            source: IO[bytes] = sys.stdin.buffer
            name = "stdin"
        else:
            try:
                source = stack.enter_context(open(args.file, "rb"))
            except OSError as exc:
                raise ConfigError(f"cannot read {args.file}: {exc.strerror or exc}") from None
            name = args.file
        return asyncio.run(_produce(settings, _lines(source), name, args.dead_letters))


def _lines(source: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(source, 1):
        line = line.rstrip(b"\r\n")
        if line.strip():
            yield n, line


def plan_record(
    decoder: Decoder, names: dict[str, str], keys: dict[str, str], line: bytes, lineno: int
) -> OutRecord:
    """The record for one valid line; ``DecodeError`` for an invalid one."""
    event = decoder.decode(Record("", -1, lineno, None, line))
    topic = names[decoder.topic_for(event.type)]
    key = event.data[keys[event.type]]
    return OutRecord(topic, str(key).encode(), line, (), event.ts_ms)


async def _produce(
    settings: config.Settings, lines: Iterator[tuple[int, bytes]], name: str, to_dlq: bool
) -> int:
    from streamrules.transport.kafka import KafkaProducerClient, wait_acked

    decoder = Decoder(settings.topic_names)
    names = {"orders": settings.orders_topic, "incidents": settings.incidents_topic}
    names.update({v: v for v in names.values()})
    keys = {t: s.key_field for t, s in event_schemas().items()}
    sent: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    pending: list[Any] = []
    async with KafkaProducerClient(settings) as producer:
        for lineno, line in lines:
            try:
                rec = plan_record(decoder, names, keys, line, lineno)
            except DecodeError as exc:
                bad[exc.reason] += 1
                print(f"line {lineno}: {exc.reason}: {exc.message}", file=sys.stderr)
                if not to_dlq:
                    continue
                src = Record(name, -1, lineno, None, line)
                rec = OutRecord(
                    settings.dlq_topic,
                    None,
                    line,
                    tuple(dead_letter_headers(src, exc.reason, exc.message)),
                )
            pending.append(await producer.send(rec))
            sent[rec.topic] += 1
            if len(pending) >= _IN_FLIGHT:
                await wait_acked(pending)
                pending.clear()
        await wait_acked(pending)
    total = sum(sent.values())
    parts = ", ".join(f"{n} to {t}" for t, n in sorted(sent.items())) or "nothing"
    summary = f"produce: sent {total} records ({parts})"
    if bad:
        reasons = ", ".join(f"{r} {n}" for r, n in sorted(bad.items()))
        summary += f"; {sum(bad.values())} invalid lines ({reasons})"
        summary += " sent to the dead-letter topic" if to_dlq else " not sent"
    print(summary, file=sys.stderr)
    return 1 if bad and not to_dlq else 0
