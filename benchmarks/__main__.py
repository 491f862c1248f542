"""Benchmark command (outside the processing flow): ``python -m benchmarks``.

Runs the workloads on streamrules and the peers in one process, prints the tables, the
streamrules/peer ratios, the drift and the targets (PASS/MISS); ``--markdown FILE``
writes the same report to a file (that is how RESULTS.md is made).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from benchmarks import harness, matches, replay, report

WORKLOADS = ("orders", "joins", "scaling", "matches", "manners", "replay")  # report order


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="streamrules against peer rule engines on the same workloads, and the "
        "replay benchmark. Peers: pip install -e '.[bench]' (see benchmarks/README.md).",
    )
    p.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run of a minute or two"
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="run the slow peers everywhere (experta's Manners 64 takes about 15 minutes)",
    )
    p.add_argument(
        "--only",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    p.add_argument(
        "--engines",
        default=",".join(harness.MODULES),
        help=f"comma-separated subset of {','.join(harness.MODULES)}",
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)"
    )
    p.add_argument(
        "--events",
        type=int,
        default=None,
        help="records in the replay benchmark (default 1,000,000; 100,000 with --quick)",
    )
    p.add_argument(
        "--orders-per-hour",
        type=float,
        default=36_000.0,
        help="replay: orders per simulated hour (default 36,000)",
    )
    p.add_argument("--markdown", default=None, help="also write the report to this file")
    args = p.parse_args(argv)
    for name, allowed in (("only", WORKLOADS), ("engines", tuple(harness.MODULES))):
        items = tuple(x.strip() for x in getattr(args, name).split(",") if x.strip())
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            p.error(
                f"--{name}: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(allowed)}"
            )
        setattr(args, name, items)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.events is not None and args.events < 1:
        p.error("--events must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    engines = tuple(e for e in harness.MODULES if e in args.engines)
    opts = harness.Options(quick=args.quick, full=args.full, repeat=args.repeat, engines=engines)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    sections: list[str] = [
        "# Benchmark results",
        report.machine(),
        f"- command: `{command.strip()}`; medians of {args.repeat} "
        f"(of at least 5 for scaling and Manners); "
        f"started {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]
    targets: list[list[str]] = []
    print("\n".join(sections), flush=True)
    done: dict[str, tuple[str, str, list[list[str]]]] = {}

    def section(key: str, title: str, body: str, rows: list[list[str]]) -> None:
        done[key] = (title, body, rows)
        print(f"\n## {title}\n\n{body}", flush=True)

    # The replay goes first, in a process that has run nothing else yet: its RSS figures
    # would otherwise start from the memory the other workloads left behind.
    if "replay" in args.only:
        n = args.events or (100_000 if args.quick else 1_000_000)
        res = replay.run(n, orders_per_hour=args.orders_per_hour)
        section(
            "replay",
            "(e) replay through Pipeline, both packs, per simulated hour",
            replay.hours_table(res) + "\n\n" + replay.summary(res),
            replay.targets(res),
        )
    mods: dict[str, Any] = {e: harness.load(e) for e in engines}
    names = {e: harness.engine_name(e, m) for e, m in mods.items()}
    for e, m in mods.items():
        if isinstance(m, str):
            print(f"  {e}: {m}")
    notes = [str(m.NOTE) for m in mods.values() if hasattr(m, "NOTE")]
    if notes:
        sections.append("- " + "\n- ".join(notes))
    if "orders" in args.only:
        cells = harness.bench_orders(mods, opts)
        section(
            "orders",
            "(a) orders: insert, fire, retract (discount rules, one decision per order)",
            harness.stream_table(cells, names),
            report.targets_orders(cells),
        )
    if "joins" in args.only:
        cells = harness.bench_joins(mods, opts)
        section(
            "joins",
            "(b) joins: Order x Customer (1,000 customers), amount > 100, "
            "NOT open payments incident",
            harness.stream_table(cells, names),
            report.targets_joins(cells),
        )
    if "scaling" in args.only:
        by_r = harness.bench_scaling(mods, opts)
        section(
            "scaling",
            "(c) rule scaling: R productions, rule i on its own constant, "
            "joined to a shared fact type",
            report.scaling_table(by_r, names),
            report.targets_scaling(by_r),
        )
    if "matches" in args.only and "streamrules" in engines:
        read = matches.run(opts)
        section(
            "matches",
            "(c2) streamrules: reading the matches (py-rete's idioms) against R, the scaling "
            "workload's rules",
            matches.report(read),
            [],
        )
    if "manners" in args.only:
        by_n = harness.bench_manners(mods, opts)
        section(
            "manners",
            "(d) Miss Manners (OPS5), seconds",
            report.manners_table(by_n, names),
            report.targets_manners(by_n),
        )
    for key in WORKLOADS:
        if key in done:
            title, body, rows = done[key]
            sections.append(f"\n## {title}\n\n{body}")
            targets += rows
    text = "\n## Targets\n\n" + harness.table(["target", "measured", "verdict"], targets)
    sections.append(text)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(sections) + "\n")
        print(f"\nwritten: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
