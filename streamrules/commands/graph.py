"""``streamrules graph``: the Rete network of the loaded rules as Graphviz DOT.

Outside the flow: it loads the rules into the same pipeline ``run`` and ``replay`` use and
prints the engine's ``to_dot()`` (alpha and beta nodes, shared nodes once, memory sizes).
Render it with ``dot -Tsvg``.
"""

from __future__ import annotations

import argparse
import sys

from streamrules.commands.replay import add_rules_flag
from streamrules.pipeline import Pipeline
from streamrules.rules import DEFAULT_RULES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "graph",
        help="print the Rete network of the rules as Graphviz DOT",
        description="Print the Rete network of the loaded rules as Graphviz DOT "
        "(render it with: streamrules graph | dot -Tsvg > rete.svg).",
    )
    add_rules_flag(parser)
    parser.add_argument(
        "--format", choices=("dot",), default="dot", help="output format (default: dot)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pipeline = Pipeline(args.rules or DEFAULT_RULES)
    dot = pipeline.net.to_dot()
    sys.stdout.write(dot if dot.endswith("\n") else dot + "\n")
    return 0
