"""Runtime stage, Faust: a ready ``faust.App`` for the Faust command line.

``faust -A streamrules.faust.app worker`` runs the rules with the settings of the
environment (``STREAMRULES_*``, ``STREAMRULES_CONFIG``), as ``streamrules run --runtime
faust`` does with its flags. A bad setting stops the import with one line, exit status 2.
"""

from __future__ import annotations

import sys

import faust

from streamrules.config import load_settings
from streamrules.errors import ConfigError
from streamrules.faust.rules import build_app

__all__ = ["app"]


def _app() -> faust.App:
    try:
        return build_app(load_settings())
    except ConfigError as exc:
        print(f"streamrules: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = _app()
