"""Build script (setuptools; the metadata is in pyproject.toml).

By default the package is pure Python: ``pip install streamrules`` or ``pip install -e .``
needs no compiler. With ``STREAMRULES_COMPILE=1`` in the environment, the hot modules
listed in ``streamrules/build.py`` are compiled by mypyc as well (a C compiler and
Python's headers needed; mypy, which brings mypyc, is then a build requirement):

    STREAMRULES_COMPILE=1 pip install .        # an installed compiled build
    make compiled                              # the same, built into build/compiled
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

from setuptools import setup

HERE = Path(__file__).resolve().parent
MYPY = "mypy>=1.10"


def _wanted() -> bool:
    return os.environ.get("STREAMRULES_COMPILE", "").strip().lower() in ("1", "true", "yes")


def _compiled_extensions() -> list[Any]:
    modules: tuple[str, ...] = runpy.run_path(str(HERE / "streamrules" / "build.py"))[
        "COMPILED_MODULES"
    ]
    try:
        from mypyc.build import mypycify
    except ModuleNotFoundError:
        # A PEP 517 front end (pip) asks for the build requirements first, from a build
        # environment without mypy: say that mypy is one (setup_requires), build nothing.
        if "egg_info" in sys.argv:
            return []
        sys.exit(f"STREAMRULES_COMPILE=1: mypyc is not installed (pip install '{MYPY}')")
    paths = [str(Path(*name.split("."))) + ".py" for name in modules]
    os.chdir(HERE)  # mypyc takes the sources by path, relative to the project
    extensions: list[Any] = mypycify(paths, opt_level="3")
    return extensions


if _wanted():
    setup(ext_modules=_compiled_extensions(), setup_requires=[MYPY])
else:
    setup()
