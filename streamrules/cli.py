"""Command line: ``streamrules <command>``.

Each command lives in ``streamrules/commands/<name>.py`` and exposes
``register(subparsers) -> None`` (adds its parser and sets ``func``) so that commands are
written independently. A user mistake (``StreamRulesError``) prints one line and exits 2;
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from streamrules import __version__, build
from streamrules.errors import ConfigError, StreamRulesError

# Order here is the order of ``streamrules --help``.
COMMANDS: tuple[str, ...] = (
    "demo",
    "run",
    "replay",
    "produce",
    "tail",
    "topics",
    "graph",
    "broker",
)


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (not the whole usage, which for
    the service commands is dozens of lines that hide the error), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="streamrules",
        description="Event-streaming rules processor: Kafka events in, Rete rules, decisions out.",
    )
    parser.add_argument(
        "--version", action="version", version=f"streamrules {__version__} ({build.describe()})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"streamrules.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"streamrules.commands.{name}":
                continue  # command not built yet
            raise
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
        register = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"streamrules {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except StreamRulesError as exc:
        print(f"streamrules {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
