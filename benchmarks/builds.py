"""The service's throughput per build, side by side (a benchmark script, not a test).

``python -m benchmarks.builds`` (after ``make compiled``) runs, on one private broker and
one pre-produced stream (``--records``), in turns for ``--repeat`` rounds: the passthrough
ceiling and its transactional variant, then ``streamrules run`` at-least-once and
exactly-once as the pure-Python build and as the compiled one (``build/compiled``, run
with ``PYTHONSAFEPATH=1`` so that the sources do not come first). Rates and ratios as
``benchmarks.service`` measures them (the whole span and its middle 80%).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson

from benchmarks.live import bench_kafka
from benchmarks.service import _table, make_topics, passthrough, produce_stream, service

ROOT = Path(__file__).resolve().parent.parent
COMPILED = ROOT / "build" / "compiled"


def _env(compiled: bool) -> None:
    """The environment of the `run` processes started next (they inherit it)."""
    os.environ["PYTHONPATH"] = f"{COMPILED}:{ROOT}" if compiled else str(ROOT)
    os.environ.pop("PYTHONSAFEPATH", None)
    if compiled:
        os.environ["PYTHONSAFEPATH"] = "1"  # the compiled copy, not the sources in ROOT


def _ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per round and build: run over the passthrough (at-least-once) and over the
    transactional passthrough (exactly-once), whole span and middle 80%."""
    out = []
    for r in sorted({row["round"] for row in rows}):
        by = {row["contender"]: row for row in rows if row["round"] == r}
        for build in ("pure", "compiled"):
            row: dict[str, Any] = {"round": r, "build": build}
            for mode, ceiling in (
                ("at-least-once", "passthrough"),
                ("exactly-once", "passthrough (transactions)"),
            ):
                run, top = by[f"run {mode}, {build}"], by[ceiling]
                for key, label in (("records/s", "span"), ("middle 80% rec/s", "middle 80%")):
                    a, b = run[key] or 0, top[key] or 0
                    row[f"{mode} {label}"] = round(a / b, 2) if b else None
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.builds", description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    if not COMPILED.is_dir():
        raise SystemExit("no compiled build: make compiled")
    rows = []
    with bench_kafka(None) as (bootstrap, tmp):
        names = make_topics(bootstrap, uuid.uuid4().hex[:8])
        n = produce_stream(bootstrap, tmp, names, args.records)
        for i in range(args.repeat):
            for txn in (False, True):
                tag = f"pass-{uuid.uuid4().hex[:6]}"
                row = passthrough(bootstrap, names, tag, n, transactional=txn)
                row["round"] = i + 1
                print(orjson.dumps(row).decode(), flush=True)
                rows.append(row)
            for compiled in (True, False):
                _env(compiled)
                for eos in (False, True):
                    tag = f"run-{uuid.uuid4().hex[:6]}"
                    row = service(bootstrap, tmp, names, tag, n, exactly_once=eos)
                    row["contender"] += ", compiled" if compiled else ", pure"
                    row["round"] = i + 1
                    print(orjson.dumps(row).decode(), flush=True)
                    rows.append(row)
    print("\n" + _table(rows))
    print("\n" + _table(_ratios(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
