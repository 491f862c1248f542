"""Several `streamrules run` instances in one group on a live feed (contract section 5).

A producer in another process writes orders and incidents (payments outages included)
while instances join and leave: one instance, then three, then one stopped with SIGTERM,
then one killed with -9 and replaced. Every instance reads every incidents partition, so
`payments_hold` sees the outages whichever instance holds the order; decisions on
incidents alone are published by the owner of their incidents partition. The union of
what the group published equals `streamrules replay` of the merged input (exactly-once:
each decision once).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.integration.test_service_live import (
    Service,
    expected_run,
    finish_feed,
    group_flags,
    live_items,
    published,
    start_feed,
)
from tests.integration.test_service_support import read_topic

RATE = 150  # events/s offered: the feed lasts about 20 s


def _published_by_rule(bootstrap: str, names: dict[str, str]) -> Counter[str]:
    return Counter(
        str(orjson.loads(r.value)["rule"]) for r in read_topic(bootstrap, names["decisions"])
    )


def _wait_visible(bootstrap: str, names: dict[str, str], want: set[str]) -> list[str]:
    """The decisions, once every wanted one is readable (a killed instance's open
    transaction holds read-committed readers back until the broker aborts it)."""
    deadline = time.monotonic() + 90
    while True:
        got, _ = published(bootstrap, names)
        if want <= set(got) or time.monotonic() > deadline:
            return got
        time.sleep(2)


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_instances_joining_and_leaving_equal_replay(
    mode: str, kafka_bootstrap: str, contract_topics: dict[str, str], tmp_path: Path
) -> None:
    names = contract_topics
    # Seed 42: payments outages while three and two instances run, escalations too.
    items = live_items(42, names, hours=8)
    flags = group_flags(kafka_bootstrap, names, mode)
    idle = [*flags, "--stop-when-idle", "8"]
    feed_s = len(items) / RATE

    a = Service(tmp_path, idle, "a")
    a.wait_for_log("rebuilding working memory", timeout=180)
    feed = start_feed(tmp_path, kafka_bootstrap, items, RATE)
    time.sleep(feed_s / 4)
    b = Service(tmp_path, flags, "b")
    c = Service(tmp_path, flags, "c")
    b.wait_for_log("partitions assigned", timeout=180)
    c.wait_for_log("partitions assigned", timeout=180)
    time.sleep(feed_s / 4)
    b.proc.terminate()  # SIGTERM: finishes its batch, commits, leaves the group
    assert b.wait(120) == 0, b.tail()
    time.sleep(feed_s / 8)
    c.kill()
    d = Service(tmp_path, idle, "d")
    finish_feed(feed)
    assert a.wait(300) == 0, a.tail()
    assert d.wait(300) == 0, d.tail()

    want_ids, want_dead = expected_run(tmp_path, kafka_bootstrap, names)
    assert want_dead == []
    by_rule = _published_by_rule(kafka_bootstrap, names)
    assert by_rule["payments_hold"] > 0 and by_rule["incident_escalation"] > 0, by_rule
    got_ids = _wait_visible(kafka_bootstrap, names, set(want_ids))
    assert set(got_ids) == set(want_ids), (
        f"lost {len(set(want_ids) - set(got_ids))}, extra {len(set(got_ids) - set(want_ids))}"
    )
    if mode == "exactly-once":
        twice = [i for i, n in Counter(got_ids).items() if n > 1]
        assert not twice, f"{len(twice)} decisions published twice"
    # Each instance took part: every one of them published or re-read something.
    for service in (a, b, d):
        assert any("partitions assigned" in str(r.get("message")) for r in service.lines())
