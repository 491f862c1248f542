"""README.md is the short front page generated from docs/readme/, docs/README.md the guide's
contents; both are up to date, the README's two commands are what CI runs, its commands
without Kafka run as written, and every page of the guide is reachable from both."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "readme"
# The parts of the README itself, not pages of the guide.
README_PARTS = {"00-quickstart.md", "01-overview.md"}


def test_generated_files_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_readme.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_check_names_a_stale_file(tmp_path: Path) -> None:
    # A copy of the tree whose README was edited by hand: --check fails and says which.
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "build_readme.py").write_bytes(
        (ROOT / "tools" / "build_readme.py").read_bytes()
    )
    (tmp_path / "docs" / "readme").mkdir(parents=True)
    for page in PAGES.glob("*.md"):
        (tmp_path / "docs" / "readme" / page.name).write_bytes(page.read_bytes())
    (tmp_path / "docs" / "README.md").write_bytes((ROOT / "docs" / "README.md").read_bytes())
    (tmp_path / "README.md").write_text(
        (ROOT / "README.md").read_text(encoding="utf-8") + "\nedited by hand\n", encoding="utf-8"
    )
    script = str(tmp_path / "tools" / "build_readme.py")
    result = subprocess.run([sys.executable, script, "--check"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "README.md out of date" in result.stderr and "docs/README.md" not in result.stderr
    subprocess.run([sys.executable, script], check=True)
    assert (tmp_path / "README.md").read_bytes() == (ROOT / "README.md").read_bytes()


def test_the_readme_is_short_and_in_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    sections = re.findall(r"^## (.+)$", readme, flags=re.MULTILINE)
    assert sections == ["Quickstart", "How it works", "Decisions", "The guide"]


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


def test_every_page_of_the_guide_is_linked_from_the_readme_and_the_contents() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    contents = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    pages = sorted(p.name for p in PAGES.glob("*.md") if p.name not in README_PARTS)
    assert "configuration.md" in pages and "operations.md" in pages
    assert [p for p in pages if f"](docs/readme/{p})" not in readme] == []
    assert [p for p in pages if f"](readme/{p})" not in contents] == []
    # In the order issue 19 gives: rules, packs and testing, replay, the service,
    # operations, Kafka, benchmarks.
    order = [
        "rule-authoring.md",
        "packs-and-testing.md",
        "events-and-replay.md",
        "service.md",
        "operations.md",
        "operations-kafka.md",
        "benchmarks.md",
    ]
    guide = readme.split("\n## The guide\n", 1)[1]
    positions = [guide.index(f"](docs/readme/{p})") for p in order]
    assert positions == sorted(positions)


def test_the_contents_list_every_section_of_every_page() -> None:
    contents = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in PAGES.glob("*.md"):
        if page.name in README_PARTS:
            continue
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for heading in re.findall(r"^#{2,6} (.+)$", text, flags=re.MULTILINE):
            assert f"[{heading}](readme/{page.name}#" in contents, (page.name, heading)


def test_the_quickstart_without_kafka_runs_as_written(tmp_path: Path) -> None:
    # The README's commands for a file of events, run as shown (the `streamrules` script
    # as this interpreter's module, so that the checkout under test is what runs).
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quickstart, flags=re.S)
    (block,) = [b for b in blocks if "streamrules replay" in b]
    python = f'"{sys.executable}"'
    for line in block.strip().splitlines():
        command = line.split("  #", 1)[0].strip()
        command = re.sub(r"^python ", python + " ", command)
        command = re.sub(r"^streamrules ", python + " -m streamrules ", command)
        result = subprocess.run(
            command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (line, result.stderr)
    decisions = [
        json.loads(line)
        for line in (tmp_path / "decisions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    rules = {d["rule"] for d in decisions}
    assert {"discount", "incident_escalation", "payments_hold"} <= rules
    # "summary and dead letters on stderr": the last command's summary names both.
    assert "replay: decisions" in result.stderr and "replay: dead letters" in result.stderr


def test_the_sites_nav_is_the_guides_order() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_readme", ROOT / "tools" / "build_readme.py"
    )
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    assert [next(iter(entry)) for entry in nav] == [
        "Contents",
        "Quickstart",
        "How it works",
        "Guide",
        "Design notes",
    ]
    assert nav[0] == {"Contents": "README.md"}
    assert [nav[1]["Quickstart"], nav[2]["How it works"]] == [
        f"readme/{name}" for name in build.README_PARTS
    ]
    assert nav[3]["Guide"] == [{page.title: f"readme/{page.file}"} for page in build.GUIDE]
    assert nav[4]["Design notes"] == [{title: path} for path, title, _ in build.DESIGN_NOTES]
