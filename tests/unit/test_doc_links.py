"""Every relative link of every Markdown file in the repository resolves: the file or
directory exists inside the repository, and an anchor names a heading of its page."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import cast
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {"node_modules", "build", "dist"}


def _build_readme() -> ModuleType:
    # tools/ is not a package: load the generator, whose heading anchors the guide uses.
    spec = importlib.util.spec_from_file_location(
        "build_readme", ROOT / "tools" / "build_readme.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _build_readme()
headings = cast(Callable[[str], list[tuple[int, str, str]]], BUILD.headings)
prose_lines = cast(Callable[[str], list[tuple[bool, str]]], BUILD.prose_lines)
slug = cast(Callable[[str], str], BUILD.slug)

_INLINE = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")


def markdown_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.md")
        if not any(
            part.startswith(".") or part in SKIPPED_DIRS or part.endswith(".egg-info")
            for part in path.relative_to(ROOT).parts
        )
    )


def links(text: str) -> list[str]:
    """Link targets outside code blocks and code spans (inline and reference links)."""
    found = []
    for prose, line in prose_lines(text):
        if prose:
            line = _CODE_SPAN.sub("", line)
            found += _INLINE.findall(line)
            found += _REFERENCE.findall(line)
    return found


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """What is wrong with each relative link of the page at path (its text, if given)."""
    if text is None:
        text = path.read_text(encoding="utf-8")
    broken = []
    for target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        where, _, anchor = unquote(target).partition("#")
        resolved = (path.parent / where).resolve()
        if not where:
            page = text
        elif not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(f"{target}: no such file")
            continue
        elif resolved.suffix == ".md" and resolved.is_file():
            page = resolved.read_text(encoding="utf-8")
        else:
            continue
        if anchor and anchor not in {a for _, _, a in headings(page)}:
            broken.append(f"{target}: no heading with that anchor")
    return broken


def test_the_documentation_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/README.md", "docs/readme/rule-authoring.md"} <= names


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path: Path) -> None:
    assert broken_links(path) == []


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        # GitHub's anchors: lower case, punctuation dropped (underscores and hyphens kept),
        # each space a hyphen.
        ("Modify: `update_fact`", "modify-update_fact"),
        ("Dead letters (topic `decisions.dlq`)", "dead-letters-topic-decisionsdlq"),
        (
            "Security: TLS, SASL/SCRAM and least-privilege ACLs",
            "security-tls-saslscram-and-least-privilege-acls",
        ),
        ("The processor's own SLOs", "the-processors-own-slos"),
        ("1. [Writing rules](readme/rule-authoring.md)", "1-writing-rules"),
    ],
)
def test_anchors_are_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_repeated_headings_are_numbered_and_code_is_not_a_heading() -> None:
    text = "# Title\n## Notes\n```python\n# not a heading\n```\n## Notes\n## Notes\n"
    assert [a for _, _, a in headings(text)] == ["title", "notes", "notes-1", "notes-2"]


def test_a_broken_link_or_anchor_is_reported() -> None:
    text = (
        "[ok](service.md#delivery-guarantees) [ok](#here) `[code](nowhere.md)`\n"
        "[bad anchor](service.md#no-such-section) [bad file](nowhere.md) [bad](#there)\n"
        "[outside](../../../etc/passwd)\n[ref]: ../../topics/nowhere\n"
        "```\n[in code](nowhere.md)\n```\n## Here\n"
    )
    # As if it were a page beside the guide's, whose paths it uses.
    assert broken_links(ROOT / "docs" / "readme" / "probe.md", text) == [
        "service.md#no-such-section: no heading with that anchor",
        "nowhere.md: no such file",
        "#there: no heading with that anchor",
        "../../../etc/passwd: no such file",
        "../../topics/nowhere: no such file",
    ]
