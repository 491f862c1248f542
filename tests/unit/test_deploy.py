"""deploy/: the alert rules and the Grafana dashboard name only series the service exports.

Every metric in an alert or a dashboard query is one that ``PrometheusMetrics`` exports (or
a recording rule of ``alerts.yml``, itself checked the same way), every label a query
groups or filters by is one that metric has, and the rules' own unit tests pass
(``promtool test rules``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streamrules.codec import Decision
from streamrules.metrics import PrometheusMetrics
from streamrules.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamrules.json"
# Labels Prometheus adds to every scraped series, and series of its own.
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": TARGET_LABELS}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
# PromQL words that look like names: functions, keywords, Grafana's variables.
_NAME = re.compile(r"(?<![\w$:\"])([a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_:]*)?)(?![\w(\"])")
_BY = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")
_MATCHERS = re.compile(r"\{([^}]*)\}")


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names, from a scrape of a ``PrometheusMetrics`` whose every
    hook has been called (labelled families have series only once used)."""
    m = PrometheusMetrics()
    m.pipeline(Pipeline())
    m.rebalance({("orders", 0)})
    m.records_in("orders", 0, 3)
    m.decoded(3)
    m.dead_letter("schema")
    m.decision("discount")
    payload = {"service": "payments", "downtime_s": 60, "budget_s": 2592}
    decisions = [
        Decision("d", rule, "payments", "2026-11-27T10:00:00Z", payload, ())
        for rule in ("error_budget_burn", "error_budget_exhausted")
    ]
    m.delivered(decisions, [int(time.time() * 1000)] * 2)
    m.watermark(1_000)
    m.partition_watermarks({("orders", 0): 1_000})
    m.lag("orders", 0, 1)
    m.batch_latency(0.1)
    m.rebuild(1)
    m.rebuild_done(1.0)
    m.broker_up(True)
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(m.registry).decode()):
        labels = {k for s in family.samples for k in s.labels} | TARGET_LABELS
        for suffix in _SUFFIXES[family.type]:
            out[family.name + suffix] = set(labels)
        if family.type == "histogram":
            out[family.name + "_count"] -= {"le"}
            out[family.name + "_sum"] -= {"le"}
    return out


EXPORTED = _exported()


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in data["groups"] for rule in group["rules"]]


def _recorded() -> dict[str, set[str]]:
    """Recording rule -> its labels (the level before the first colon: job_instance -> ...)."""
    out = {}
    for rule in _rules():
        if "record" in rule:
            level = rule["record"].split(":", 1)[0]
            out[rule["record"]] = set(level.split("_"))
    return out


KNOWN = {**EXPORTED, **_recorded(), **PROMETHEUS_SERIES}
_WORDS = {
    "by", "on", "without", "ignoring", "and", "or", "unless", "bool", "group_left",
    "group_right", "offset", "inf", "nan", "le", "sum", "max", "min", "avg", "count",
    "rate", "increase", "histogram_quantile", "avg_over_time", "label_values", "round",
}  # fmt: skip


def _metrics_in(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', '""', expr)  # label values are not names
    text = _MATCHERS.sub("{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges: [5m], [$__rate_interval]
    text = _BY.sub("by ()", text)
    return {n for n in _NAME.findall(text) if n not in _WORDS and not n.startswith("__")}


def _labels_in(expr: str) -> set[str]:
    names = {x.strip() for group in _BY.findall(expr) for x in group.split(",") if x.strip()}
    for group in _MATCHERS.findall(expr):
        names |= {m.group(1) for m in re.finditer(r"(\w+)\s*(?:=~|!~|!=|=)", group)}
    return names


def _check(expr: str, where: str, legend: str = "") -> list[str]:
    problems = []
    # Grafana's label_values(metric, label): the label must be one of the metric's.
    expr = re.sub(r"label_values\((\w+),\s*(\w+)\)", r"sum by (\2) (\1)", expr)
    metrics = _metrics_in(expr)
    if not metrics:
        problems.append(f"{where}: no metric in {expr!r}")
    unknown = metrics - set(KNOWN)
    problems += [f"{where}: {name} is not exported (nor recorded)" for name in sorted(unknown)]
    allowed = {label for name in metrics & set(KNOWN) for label in KNOWN[name]}
    wanted = _labels_in(expr) | set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
    problems += [f"{where}: no metric of it has label {lab!r}" for lab in sorted(wanted - allowed)]
    for le in re.findall(r'\ble="([^"]+)"', expr):
        if le not in _latency_bounds():
            problems.append(f"{where}: no histogram bucket le={le!r}")
    return problems


def _latency_bounds() -> set[str]:
    m = PrometheusMetrics()
    text = generate_latest(m.registry).decode()
    return set(re.findall(r'streamrules_decision_latency_seconds_bucket\{le="([^"]+)"\}', text))


def test_the_checker_catches_what_it_should() -> None:
    assert _check("rate(streamrules_decisions_total[5m])", "ok") == []
    assert _check("sum by (rule) (rate(streamrules_decision_total[5m]))", "x")  # a typo
    assert _check("sum by (reasons) (rate(streamrules_dead_letters_total[5m]))", "x")
    assert _check('streamrules_decision_latency_seconds_bucket{le="5"}', "x")  # not "5.0"
    assert _check("up", "x", legend="{{topic}}")


def test_alert_rules_name_only_exported_series() -> None:
    problems = []
    for rule in _rules():
        name = rule.get("record") or rule["alert"]
        problems += _check(rule["expr"], f"alerts.yml {name}")
    assert not problems, "\n".join(problems)


def _dashboard_queries() -> Iterator[tuple[str, str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for p in panels:
            yield p
            yield from walk(p.get("panels", []))

    for panel in walk(dash["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for t in panel["targets"]:
            yield panel["title"], t["expr"], t.get("legendFormat", "")
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            yield f"variable {var['name']}", var["definition"], ""


def test_dashboard_queries_name_only_exported_series() -> None:
    queries = list(_dashboard_queries())
    assert len(queries) >= 20
    problems = [p for title, expr, legend in queries for p in _check(expr, title, legend)]
    assert not problems, "\n".join(problems)


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    text = " ".join(expr for _, expr, _ in _dashboard_queries())
    for metric in (
        "streamrules_decisions_total",
        "streamrules_dead_letters_total",
        "streamrules_decision_latency_seconds_bucket",
        "streamrules_consumer_lag",
        "streamrules_watermark_lag_seconds",
        "streamrules_facts_live",
        "streamrules_error_budget_downtime_seconds",
        "streamrules_error_budget_decisions_total",
    ):
        assert metric in text, metric
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] == "streamrules"
    # Any Prometheus data source: every panel reads the dashboard's variable.
    sources = {json.dumps(p.get("datasource")) for p in dash["panels"] if p["type"] != "row"}
    assert sources == {json.dumps({"type": "prometheus", "uid": "${datasource}"})}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found (Debian package prometheus; make test installs it)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = _tool("promtool")
    check = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", str(ALERTS_TEST)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ALERTS_TEST.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))["tests"]
    tested = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in _rules() if "alert" in rule}
    assert alerts == tested, f"alerts never seen firing in alerts_test.yml: {alerts - tested}"


OPERATIONS_DOC = ROOT / "docs" / "readme" / "operations.md"


def _doc_table(first_column: str) -> list[list[str]]:
    """The rows of the doc's table whose header starts with ``first_column``."""
    rows: list[list[str]] = []
    inside = False
    for line in OPERATIONS_DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(f"| {first_column} |"):
            inside = True
        elif inside and line.startswith("|") and not set(line) <= set("|- "):
            rows.append(cells)
        elif inside and not line.startswith("|"):
            break
    return rows


def test_the_metrics_table_is_what_the_service_exports() -> None:
    m = PrometheusMetrics()
    text = generate_latest(m.registry).decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    documented = {}
    for name, kind, labels, _what in _doc_table("metric"):
        name = name.strip("`")
        base = name.removesuffix("_total") if kind == "counter" else name
        documented[base] = kind
        wanted = {x.strip(" `") for x in labels.split(",") if x.strip()}
        suffix = _SUFFIXES[kind][0] if kind != "histogram" else "_count"
        got = EXPORTED[base + suffix] - TARGET_LABELS - {"le"}
        assert got == wanted, f"{name}: documented labels {wanted}, exported {got}"
    assert documented == families


def test_the_alerts_table_is_alerts_yml() -> None:
    documented = [row[0].strip("`") for row in _doc_table("alert")]
    assert documented == [rule["alert"] for rule in _rules() if "alert" in rule]


def test_the_kubernetes_probes_in_the_doc_use_the_served_paths() -> None:
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    probes = yaml.safe_load(block)
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"
    from streamrules.httpserver import Probes

    # The probe's timeout must outlast the time the loop is given to answer.
    assert probes["livenessProbe"]["timeoutSeconds"] > Probes().answer_timeout_s
    ports = {p["httpGet"]["port"] for p in probes.values()}
    assert ports == {9464} and "--metrics-port 9464" in text
