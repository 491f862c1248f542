"""README.md is the assembly of docs/readme/, and its two commands are what CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_quickstart_commands_are_the_ones_ci_and_make_run() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^make (\w+)", quickstart, flags=re.MULTILINE)
    assert commands[:2] == ["demo", "test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: install\b", makefile, flags=re.MULTILINE)
    assert re.search(r"^test: install\b", makefile, flags=re.MULTILINE)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^step test make test\b", ci, flags=re.MULTILINE)


def test_internal_links_point_at_headings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    links = re.findall(r"\]\(#([^)]+)\)", readme)
    missing = [link for link in links if link not in anchors]
    assert not missing, f"README links to missing headings: {missing}"
