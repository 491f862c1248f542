"""The engine stays pure: importing it loads neither aiokafka nor asyncio."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_kafka_or_asyncio() -> None:
    code = (
        "import sys, streamrules.rete\n"
        "bad = [m for m in ('aiokafka', 'asyncio', 'faust') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_public_api_is_pinned() -> None:
    import streamrules.rete as rete

    assert sorted(rete.__all__) == sorted(
        [
            "AND",
            "EXISTS",
            "NOT",
            "OR",
            "Accumulate",
            "Bind",
            "Collect",
            "Count",
            "Fact",
            "Filter",
            "Listener",
            "Match",
            "Max",
            "Min",
            "Production",
            "ReteNetwork",
            "RuleError",
            "RuleValueError",
            "Sum",
            "V",
        ]
    )
    for name in rete.__all__:
        assert hasattr(rete, name)
