"""`streamrules demo` against the test broker: it creates its topics, produces, processes,
shows the summary and exits 0 by itself."""

from __future__ import annotations

from tests.integration.test_service_support import cli


def test_demo_runs_to_the_end(kafka_bootstrap: str) -> None:
    done = cli(
        "demo",
        "--days",
        "0.5",
        "--orders-per-hour",
        "300",
        "--bootstrap-servers",
        kafka_bootstrap,
        timeout=300,
        env={"COLUMNS": "120"},
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:] + out[-2000:]
    assert "summary" in out
    assert "discount" in out
    assert "records processed" in out
    # A second demo on the same cluster leaves the first one's topics alone.
    again = cli(
        "demo",
        "--days",
        "0.2",
        "--bootstrap-servers",
        kafka_bootstrap,
        timeout=300,
        env={"COLUMNS": "120"},
    )
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert "uses fresh" in again.stdout.decode()
