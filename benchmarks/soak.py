"""Soak run (the whole flow, no Kafka): ``python -m benchmarks.soak`` is the replay
benchmark alone, ``python -m benchmarks --only replay``; it takes the same options
(``--events N``, ``--orders-per-hour R``, ``--markdown FILE``)."""

from __future__ import annotations

import sys

from benchmarks.__main__ import main as bench_main


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    return bench_main(["--only", "replay", "--engines", "streamrules", *args])


if __name__ == "__main__":
    sys.exit(main())
