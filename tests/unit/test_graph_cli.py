"""``streamrules graph``: the Rete network as Graphviz DOT, through the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys


def graph(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamrules", "graph", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_graph_of_both_packs_is_dot() -> None:
    res = graph()
    assert res.returncode == 0, res.stderr
    dot = res.stdout
    assert re.match(r"\s*(strict\s+)?digraph\b", dot)
    assert dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for rule in ("discount", "incident_escalation", "payments_hold", "error_budget_burn"):
        assert rule in dot


def test_graph_of_one_pack_is_smaller() -> None:
    one = graph("--rules", "streamrules.packs.discounts", "--format", "dot")
    assert one.returncode == 0, one.stderr
    assert "discount" in one.stdout and "payments_hold" not in one.stdout
    assert len(one.stdout) < len(graph().stdout)


def test_graph_bad_rules_exit_2() -> None:
    res = graph("--rules", "no.such.module")
    assert res.returncode == 2
    assert "no.such.module" in res.stderr and "Traceback" not in res.stderr
