"""Test driver, pytest side: the ``rules_driver`` fixture.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["streamrules.testing.plugin"]``
(or import the fixture). The fixture is a factory: ``rules_driver("my_rules.py",
start="2026-11-27T10:00:00Z")`` returns a fresh ``RulesTestDriver``; with no argument it
loads both bundled packs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamrules.testing.driver import RulesTestDriver

__all__ = ["rules_driver"]


@pytest.fixture
def rules_driver() -> Callable[..., RulesTestDriver]:
    """A factory of ``RulesTestDriver``: same arguments as the class."""

    def make(*args: Any, **kwargs: Any) -> RulesTestDriver:
        return RulesTestDriver(*args, **kwargs)

    return make
