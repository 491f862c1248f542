"""`streamrules demo` against the test broker: it creates its topics, produces, processes,
shows the summary and exits 0 by itself; a second demo leaves the first one's topics alone."""

from __future__ import annotations

from tests.integration.test_service_support import cli, read_topic, topic_flags


def test_demo_runs_to_the_end(kafka_bootstrap: str, contract_topics: dict[str, str]) -> None:
    flags = topic_flags(kafka_bootstrap, contract_topics)
    done = cli(
        "demo",
        "--days",
        "0.5",
        "--orders-per-hour",
        "300",
        *flags,
        timeout=300,
        env={"COLUMNS": "120"},
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:] + out[-2000:]
    assert "summary" in out and "records processed" in out
    assert "discount" in out
    decisions = read_topic(kafka_bootstrap, contract_topics["decisions"])
    assert decisions, "the demo publishes to the configured decisions topic"
    assert f"decisions {len(decisions)} " in " ".join(out.replace("│", " ").split())

    again = cli("demo", "--days", "0.2", *flags, timeout=300, env={"COLUMNS": "120"})
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert "uses fresh" in again.stdout.decode()
    assert len(read_topic(kafka_bootstrap, contract_topics["decisions"])) == len(decisions)
