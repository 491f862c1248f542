"""The layering of DESIGN.md section 2, checked on the source: imports point outwards.

errors <- rete <- facts, codec <- pipeline <- transport, metrics, config <- app <- cli.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "streamrules"

# For each inner layer: the streamrules modules it may import (prefixes).
ALLOWED: dict[str, tuple[str, ...]] = {
    "rete": ("streamrules.errors", "streamrules.rete"),
    "codec": ("streamrules.errors", "streamrules.codec", "streamrules.topics"),
    "facts": ("streamrules.errors", "streamrules.rete", "streamrules.codec", "streamrules.facts"),
    "packs": ("streamrules.errors", "streamrules.rete", "streamrules.codec", "streamrules.facts"),
}
# Third-party or stdlib modules no inner layer may import.
FORBIDDEN_EVERYWHERE_INNER = ("aiokafka", "asyncio", "faust", "kafka")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_inner_layers_import_only_inwards(layer: str) -> None:
    files = _layer_files(layer)
    assert files, f"streamrules/{layer} has no modules"
    bad: list[str] = []
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            outward = top == "streamrules" and not name.startswith(ALLOWED[layer])
            if top in FORBIDDEN_EVERYWHERE_INNER or outward:
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_pipeline_is_free_of_io() -> None:
    names = _imports(PACKAGE / "pipeline.py")
    assert not [n for n in names if n.split(".")[0] in FORBIDDEN_EVERYWHERE_INNER]
    assert not [
        n
        for n in names
        if n.startswith(("streamrules.transport", "streamrules.app", "streamrules.cli"))
    ]


def test_only_transport_imports_aiokafka() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "transport" not in path.relative_to(PACKAGE).parts
        and any(n.split(".")[0] == "aiokafka" for n in _imports(path))
    ]
    assert not offenders, f"only streamrules/transport may import aiokafka: {offenders}"


def test_importing_the_engine_and_pipeline_loads_no_kafka_or_asyncio() -> None:
    code = (
        "import sys, streamrules, streamrules.rete, streamrules.pipeline;"
        "bad = [m for m in ('aiokafka', 'asyncio', 'faust') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing the engine and the pipeline loaded: {out}"
