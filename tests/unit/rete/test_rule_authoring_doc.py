"""Every ```python block of docs/readme/rule-authoring.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "readme" / "rule-authoring.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_doc_has_examples() -> None:
    assert len(blocks()) >= 10


def test_doc_examples_run() -> None:
    namespace: dict[str, object] = {"__name__": "rule_authoring_doc"}
    for i, code in enumerate(blocks()):
        try:
            exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            raise AssertionError(f"block {i} of {DOC.name} failed: {exc!r}\n{code}") from exc
