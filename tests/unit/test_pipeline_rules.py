"""Rule loading (``--rules``): module paths, files, definition order, clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from streamrules.errors import ConfigError
from streamrules.packs import discounts, sre
from streamrules.pipeline import Pipeline
from streamrules.rules import load_rules

MINE = textwrap.dedent(
    """
    from streamrules.facts import Order
    from streamrules.rete import Production, V

    NOT_A_RULE = 3

    @Production(V("o") << Order(), name="zeta")
    def zeta(o, ctx):
        ctx.emit(o["customer_id"], {"z": 1})

    @Production(V("o") << Order(), name="alpha")
    def alpha(o, ctx):
        ctx.emit(o["customer_id"], {"a": 1})
    """
)


def test_pack_modules_load_in_definition_order() -> None:
    got = [p.name for p in load_rules(["streamrules.packs.sre"])]
    assert (
        got.index("incident_escalation")
        < got.index("incident_storm")
        < got.index("payments_hold")
        < got.index("error_budget_burn")
        < got.index("error_budget_exhausted")
    )
    assert [p.name for p in load_rules(["streamrules.packs.discounts"])] == ["discount"]


def test_files_load_and_multiple_specs_concatenate(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(MINE)
    got = [p.name for p in load_rules(["streamrules.packs.discounts", str(path)])]
    assert got == ["discount", "zeta", "alpha"]
    # the same file twice (another spelling) is the same module: loaded once
    again = load_rules([str(path), str(tmp_path / "." / "mine.py")])
    assert [p.name for p in again] == ["zeta", "alpha"]
    # two different productions with one name are refused
    other = tmp_path / "other.py"
    other.write_text(MINE)
    with pytest.raises(ConfigError, match="two productions are named 'zeta'"):
        load_rules([str(path), str(other)])


def test_modules_and_productions_as_objects() -> None:
    got = load_rules([discounts, sre.incident_storm])
    assert [p.name for p in got] == ["discount", "incident_storm"]


def test_one_production_by_name() -> None:
    assert [p.name for p in load_rules(["streamrules.packs.sre:payments_hold"])] == [
        "payments_hold"
    ]
    assert [p.name for p in load_rules(["streamrules.packs.sre.payments_hold"])] == [
        "payments_hold"
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no.such.module", "'no.such.module': no such module"),
        ("/nonexistent/rules.py", "'/nonexistent/rules.py': no such file"),
        ("streamrules.errors", "'streamrules.errors': no productions"),
        ("streamrules.packs.sre:HOUR_MS", "not a production"),
        ("streamrules.packs.sre.BUDGET_S", "not a production"),
        ("streamrules.packs.sre:nothing_here", "has no attribute 'nothing_here'"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Pipeline([spec])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def broken(:\n")
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    raising = tmp_path / "raising.py"
    raising.write_text("raise RuntimeError('nope')\n")
    text = tmp_path / "rules.txt"
    text.write_text("")
    cases = [
        (syntax, "syntax error"),
        (empty, "no productions"),
        (raising, "RuntimeError: nope"),
        (text, "not a .py file"),
    ]
    for path, message in cases:
        with pytest.raises(ConfigError) as err:
            load_rules([str(path)])
        assert str(path) in str(err.value) and message in str(err.value)
