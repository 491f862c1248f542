"""``streamrules tail``: print the decisions topic as JSONL (read committed), following it.

Outside the flow: a reader of its output. Each decision is printed as it is on the topic
(the contract's JSON object), one per line, flushed as it arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from streamrules import config
from streamrules.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "tail",
        help="print decisions from the decisions topic as JSONL",
        description="Follow the decisions topic (committed records only) and print each "
        "decision as one JSON line.",
    )
    parser.add_argument("--rule", action="append", metavar="R", help="only this rule (repeatable)")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest decision"
    )
    parser.add_argument("--max", type=int, metavar="N", help="stop after N decisions")
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop after S seconds without a decision"
    )
    # The settings it uses: where the cluster is and the decisions topic.
    config.add_arguments(parser, (*config.CONNECTION_SETTINGS, "decisions_topic"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = config.load_settings(args)
    if args.max is not None and args.max < 1:
        raise ConfigError(f"--max must be >= 1, got {args.max}")
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {args.timeout}")
    try:
        return asyncio.run(_tail(settings, args))
    except BrokenPipeError:
        return 0


async def _tail(settings: config.Settings, args: argparse.Namespace) -> int:
    from streamrules.transport.kafka import follow

    rules = {r.encode() for r in args.rule} if args.rule else None
    out = sys.stdout.buffer
    printed = 0
    async for rec in follow(
        settings,
        settings.decisions_topic,
        from_beginning=args.from_beginning,
        idle_timeout_s=args.timeout,
    ):
        if rules is not None and rec.header("rule") not in rules:
            continue
        out.write(rec.value + b"\n")
        out.flush()
        printed += 1
        if args.max is not None and printed >= args.max:
            break
    return 0
