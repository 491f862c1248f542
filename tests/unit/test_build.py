"""The two builds (streamrules.build): which one runs is reported truthfully, the module
flags agree with it, and the compiled build's list of modules is real.

This file runs in ``make test`` (pure Python) and in ``make test-compiled``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import streamrules
from streamrules import build

ROOT = Path(__file__).resolve().parents[2]

# Each compiled module that runs differently when compiled has its own flag (read from
# its own ``__file__``): these must agree with what ``streamrules.build`` reports.
FLAGS = {
    "streamrules.rete.tokens": "COMPILED",
    "streamrules.facts.memory": "_COMPILED",
    "streamrules.pipeline": "_COMPILED",
}


def test_every_listed_module_is_a_source_file_of_the_package() -> None:
    package = Path(streamrules.__file__).parent
    for name in build.COMPILED_MODULES:
        assert name.startswith("streamrules."), name
        path = package.joinpath(*name.split(".")[1:]).with_suffix(".py")
        assert path.is_file(), name
    assert len(set(build.COMPILED_MODULES)) == len(build.COMPILED_MODULES)


def test_what_stays_interpreted_is_not_listed() -> None:
    # Users subclass these, or they rely on CPython's layout (see the build docstring).
    for name in (
        "streamrules.rete.fact",
        "streamrules.rete.conditions",
        "streamrules.rete.production",
        "streamrules.facts.types",
        "streamrules.codec.events",
    ):
        assert name not in build.COMPILED_MODULES


def test_the_modules_own_flags_agree_with_the_build() -> None:
    done = set(build.compiled_modules())
    for name, flag in FLAGS.items():
        module = importlib.import_module(name)
        assert getattr(module, flag) is (name in done), name
        assert (name in done) is (not str(module.__file__).endswith((".py", ".pyc"))), name


def test_describe_names_the_build() -> None:
    text = build.describe()
    if build.compiled():
        assert text == f"compiled (mypyc): {len(build.COMPILED_MODULES)} modules"
    elif not build.compiled_modules():
        assert text == "pure Python"
    else:
        assert text.startswith("partly compiled")


def test_the_tests_run_on_the_build_they_expect(pytestconfig: pytest.Config) -> None:
    # make test-compiled passes --expect-compiled; make test runs on the sources.
    assert build.compiled() is bool(pytestconfig.getoption("--expect-compiled"))


def _run_setup(tmp_path: Path, env: dict[str, str], argv: list[str]) -> str:
    """Run setup.py in a subprocess with setuptools.setup and mypyc's mypycify recording
    what they are given (nothing is built); prints the setup() keywords and the sources
    given to mypyc."""
    code = f"""
import json, os, sys, types, setuptools
seen = {{}}
setuptools.setup = lambda **kw: seen.update(kw)
fake = types.ModuleType("mypyc.build")
def mypycify(paths, **kw):
    seen["mypyc_paths"] = list(paths)
    seen["cwd"] = os.getcwd()
    return ["ext"]
fake.mypycify = mypycify
sys.modules["mypyc"] = types.ModuleType("mypyc")
sys.modules["mypyc.build"] = fake
os.environ.pop("STREAMRULES_COMPILE", None)
os.environ.update({env!r})
sys.argv = {argv!r}
path = {str(ROOT / "setup.py")!r}
exec(compile(open(path).read(), path, "exec"), {{"__file__": path, "__name__": "__main__"}})
print(json.dumps(seen, sort_keys=True))
"""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.strip()


def test_a_plain_setup_builds_no_extension(tmp_path: Path) -> None:
    """Without STREAMRULES_COMPILE, setup.py declares no extension module and no build
    requirement: a plain pip install is pure Python and needs no compiler."""
    assert _run_setup(tmp_path, {}, ["setup.py", "bdist_wheel"]) == "{}"
    assert _run_setup(tmp_path, {"STREAMRULES_COMPILE": "0"}, ["setup.py", "egg_info"]) == "{}"


def test_the_compiled_setup_compiles_exactly_the_listed_modules(tmp_path: Path) -> None:
    seen = json.loads(_run_setup(tmp_path, {"STREAMRULES_COMPILE": "1"}, ["setup.py", "build_ext"]))
    expected = [str(Path(*name.split("."))) + ".py" for name in build.COMPILED_MODULES]
    assert seen["mypyc_paths"] == expected
    assert seen["cwd"] == str(ROOT)  # the paths are the project's sources
    assert seen["ext_modules"] == ["ext"]
    assert seen["setup_requires"] == ["mypy>=1.10"]  # a build requirement only then
