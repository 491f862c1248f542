"""Shared test configuration: hypothesis profiles and the Kafka test options.

Hypothesis profiles: ``dev`` (default, quick) and ``ci`` (more examples, still bounded so
the whole suite stays far under the CI budget on 2 cores). Pick one with
``HYPOTHESIS_PROFILE=ci`` (``.ci/run`` does) or ``pytest --hypothesis-profile=ci``.
Neither has a deadline: tests assert behaviour, never speed.

Kafka: integration tests get their broker from ``--kafka-bootstrap HOST:PORT`` or the
``STREAMRULES_TEST_BOOTSTRAP`` variable (``make test`` passes the broker it started);
without either, ``tests/integration/conftest.py`` starts a private broker.

``--expect-compiled``: the run is on the compiled build (``make test-compiled``).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,  # a CI failure must be reproducible from the log alone
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Read by the test harness only (streamrules.config leaves STREAMRULES_TEST_* alone).
TEST_BOOTSTRAP_ENV = "STREAMRULES_TEST_BOOTSTRAP"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kafka-bootstrap",
        default=None,
        metavar="HOST:PORT",
        help=f"run integration tests against this running broker (or set {TEST_BOOTSTRAP_ENV}); "
        "default: start a private one",
    )
    parser.addoption(
        "--expect-compiled",
        action="store_true",
        help="fail at once unless the package imported is the compiled build (make "
        "test-compiled passes it: the tests must not run on pure Python by mistake)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--expect-compiled"):
        import streamrules
        from streamrules import build

        if not build.compiled():
            raise pytest.UsageError(
                f"--expect-compiled: {streamrules.__file__} is {build.describe()} "
                "(make compiled, then PYTHONPATH=build/compiled PYTHONSAFEPATH=1 python -m pytest)"
            )


def configured_bootstrap(config: pytest.Config) -> str | None:
    """The broker given on the command line or in the environment, if any."""
    value = config.getoption("--kafka-bootstrap") or os.environ.get(TEST_BOOTSTRAP_ENV)
    return value or None
