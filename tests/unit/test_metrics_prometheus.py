"""The Prometheus adapter: the hooks become ``streamrules_*`` series when scraped."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamrules.codec import DEAD_LETTER_REASONS, Decision, Record
from streamrules.metrics import LATENCY_SLO_SECONDS, Metrics, PrometheusMetrics, make_metrics
from streamrules.pipeline import Pipeline

ORDER = (
    b'{"type":"order_placed","order_id":"o-1","customer_id":"c-1","logged_in":true,'
    b'"items":[{"sku":"A","qty":1,"price":5}],"ts":"2026-11-26T10:00:00Z"}'
)


def _samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _decision(rule: str, payload: dict[str, object]) -> Decision:
    return Decision("d-1", rule, "k", "2026-11-27T10:00:00Z", payload, ())


def test_no_port_means_no_op_hooks() -> None:
    metrics = make_metrics(None)
    assert type(metrics) is Metrics
    metrics.decision("discount")  # does nothing, raises nothing
    metrics.broker_up(False)
    assert isinstance(make_metrics(9464), PrometheusMetrics)  # no server: that is run's


def test_hooks_become_series() -> None:
    m = PrometheusMetrics(version="9.9.9")
    m.rebalance({("orders", 0), ("incidents", 0)})
    m.records_in("orders", 0, 5)
    m.records_in("orders", 0, 2)
    m.decoded(4)
    m.dead_letter("schema")
    m.decision("discount")
    m.decision("discount")
    m.watermark(1_764_237_600_000)
    m.partition_watermarks({("orders", 0): 1_764_237_600_000})
    m.lag("orders", 0, 7)
    m.batch_latency(0.25)
    m.rebuild(3)
    m.rebuild_done(1.5)
    m.broker_up(False)
    got = _samples(m)
    orders0 = (("partition", "0"), ("topic", "orders"))
    assert got[("streamrules_build_info", (("version", "9.9.9"),))] == 1
    assert got[("streamrules_records_in_total", orders0)] == 7
    assert got[("streamrules_events_decoded_total", ())] == 4
    assert got[("streamrules_dead_letters_total", (("reason", "schema"),))] == 1
    assert got[("streamrules_decisions_total", (("rule", "discount"),))] == 2
    assert got[("streamrules_watermark_timestamp_seconds", ())] == 1_764_237_600
    assert got[("streamrules_partition_watermark_timestamp_seconds", orders0)] == 1_764_237_600
    assert got[("streamrules_consumer_lag", orders0)] == 7
    assert got[("streamrules_assigned_partitions", ())] == 2
    assert got[("streamrules_batch_duration_seconds_count", ())] == 1
    assert got[("streamrules_batch_duration_seconds_bucket", (("le", "0.25"),))] == 1
    assert got[("streamrules_batch_duration_seconds_bucket", (("le", "0.1"),))] == 0
    assert got[("streamrules_rebuilds_total", ())] == 1
    assert got[("streamrules_rebuild_records_total", ())] == 3
    assert got[("streamrules_rebuild_duration_seconds_sum", ())] == 1.5
    assert got[("streamrules_rebalances_total", ())] == 1
    assert got[("streamrules_broker_up", ())] == 0


def test_every_dead_letter_reason_exists_from_the_start() -> None:
    got = _samples(PrometheusMetrics())
    for reason in DEAD_LETTER_REASONS:
        assert got[("streamrules_dead_letters_total", (("reason", reason),))] == 0


def test_watermark_lag_is_measured_at_scrape_time() -> None:
    m = PrometheusMetrics()
    m.rebalance({("orders", 1)})
    stamp = time.time() - 120
    m.partition_watermarks({("orders", 1): int(stamp * 1000)})
    m.partition_watermarks({("orders", 1): int(stamp * 1000) - 60_000})  # never moves back
    lag = _samples(m)[
        ("streamrules_watermark_lag_seconds", (("partition", "1"), ("topic", "orders")))
    ]
    assert 119 <= lag < 119 + 600  # generous: the machine may be slow, never fast


def test_revoked_partitions_leave_no_stale_series() -> None:
    m = PrometheusMetrics()
    m.rebalance({("orders", 0), ("orders", 1)})
    m.lag("orders", 0, 3)
    m.lag("orders", 1, 4)
    m.partition_watermarks({("orders", 0): 1000, ("orders", 1): 2000})
    m.rebalance({("orders", 1)})
    m.lag("orders", 0, 9)  # a late report for a partition we no longer own
    got = _samples(m)
    lags = {k for k in got if k[0] == "streamrules_consumer_lag"}
    assert lags == {("streamrules_consumer_lag", (("partition", "1"), ("topic", "orders")))}
    wms = [k for k in got if k[0] == "streamrules_partition_watermark_timestamp_seconds"]
    assert [dict(k[1])["partition"] for k in wms] == ["1"]


def test_decision_latency_histogram_and_the_slo_bucket() -> None:
    m = PrometheusMetrics()
    now_ms = int(time.time() * 1000)
    # 3 decisions caused 1 s ago, one 20 minutes ago, one stamped in the future.
    m.delivered(
        [_decision("discount", {})] * 5,
        [now_ms - 1000] * 3 + [now_ms - 1_200_000, now_ms + 60_000],
    )
    got = _samples(m)
    slo = ("streamrules_decision_latency_seconds_bucket", (("le", repr(LATENCY_SLO_SECONDS)),))
    assert got[slo] == 4  # 3 at about 1 s and the future one as 0 s; not the 20-minute one
    assert got[("streamrules_decision_latency_seconds_bucket", (("le", "+Inf"),))] == 5
    assert got[("streamrules_decision_latency_seconds_count", ())] == 5
    assert got[("streamrules_decision_latency_seconds_bucket", (("le", "0.05"),))] == 1


def test_error_budget_state_per_service_from_the_sre_decisions() -> None:
    m = PrometheusMetrics()
    now_ms = int(time.time() * 1000)
    budget = {"service": "payments", "budget_s": 2592}
    m.delivered(
        [
            _decision("error_budget_burn", {**budget, "downtime_s": 60}),
            _decision("error_budget_exhausted", {**budget, "downtime_s": 2600}),
            _decision("error_budget_burn", {**budget, "downtime_s": 75}),
            _decision("discount", {"service": "not-a-budget"}),
        ],
        [now_ms] * 4,
    )
    got = _samples(m)
    burn = (("rule", "error_budget_burn"), ("service", "payments"))
    assert got[("streamrules_error_budget_decisions_total", burn)] == 2
    assert got[("streamrules_error_budget_downtime_seconds", (*burn, ("window", "1h")))] == 75
    exhausted = (("rule", "error_budget_exhausted"), ("service", "payments"), ("window", "30d"))
    assert got[("streamrules_error_budget_downtime_seconds", exhausted)] == 2600
    assert got[("streamrules_error_budget_seconds", (("service", "payments"),))] == 2592
    assert not [k for k in got if ("service", "not-a-budget") in k[1]]


def test_engine_counts_survive_a_new_pipeline() -> None:
    m = PrometheusMetrics()
    first = Pipeline()
    m.pipeline(first)
    first.process(Record("orders", 0, 0, b"c-1", ORDER))
    fired = _samples(m)[("streamrules_rule_firings_total", (("rule", "discount"),))]
    assert fired >= 1
    assert _samples(m)[("streamrules_facts_live", (("type", "order"),))] == 1
    second = Pipeline()  # a rebuild: the counters go on, the live facts are the new ones'
    m.pipeline(second)
    second.process(Record("orders", 0, 0, b"c-1", ORDER.replace(b"o-1", b"o-2")))
    got = _samples(m)
    assert got[("streamrules_rule_firings_total", (("rule", "discount"),))] == 2 * fired
    assert got[("streamrules_facts_live", (("type", "order"),))] == 1


FAILING = """
from streamrules.facts import Order
from streamrules.rete import Production, V

@Production(V("o") << Order())
def broken(o, ctx):
    raise ValueError("boom")
"""


def test_rule_errors_by_rule(tmp_path: Path) -> None:
    rules = tmp_path / "failing.py"
    rules.write_text(FAILING)
    pipeline = Pipeline([str(rules)])
    m = PrometheusMetrics()
    m.pipeline(pipeline)
    result = pipeline.process(Record("orders", 0, 0, b"c-1", ORDER))
    assert [d.reason for d in result.dead_letters] == ["rule_error"]
    assert _samples(m)[("streamrules_rule_errors_total", (("rule", "broken"),))] == 1
