"""Every PromQL expression in deploy/ (alerts, Grafana dashboard) names series the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from twitstack.core.metrics import ServiceHealthMetrics, new_registry
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.notifier.metrics import NotifierMetrics
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.writer.metrics import WriterMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULE_FILES = [DEPLOY / "prometheus" / name for name in ("alerts.yml", "outages.yml")]
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "twitstack.json"

# Series Prometheus itself writes for every target or rule; no code exports them.
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {
    "up": frozenset(),
    "scrape_duration_seconds": frozenset(),
    "scrape_samples_scraped": frozenset(),
    "ALERTS": frozenset({"alertname", "alertstate", "severity"}),
}
# Labels Prometheus attaches to every scraped series (prometheus.yml sets no others).
TARGET_LABELS = frozenset({"job", "instance"})
# Sample names each metric type exposes, as suffixes of the family name.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
# Labels a sample carries beyond its family's own: `le` on buckets, `quantile` on summaries.
EXTRA_LABELS = {
    ("histogram", "_bucket"): frozenset({"le"}),
    ("summary", ""): frozenset({"quantile"}),
}

AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ]
)
KEYWORDS = frozenset(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"])
GROUPING = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<number>(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[a-zA-Z0-9]*)
  | (?P<variable>\$\{[^}]*\}|\$\w+)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],@:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Selector:
    """One series selector: the metric name and the label names its matchers use."""

    name: str
    labels: frozenset[str]


@dataclass(frozen=True, slots=True)
class Family:
    """What one exported sample name allows: its labels as Prometheus stores them."""

    labels: frozenset[str]


def tokenize(expr: str) -> list[Token]:
    """PromQL (with Grafana's $variables) as tokens, whitespace and comments dropped."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot tokenize {expr[pos : pos + 20]!r} in {expr!r}")
        kind = match.lastgroup
        assert kind is not None
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group()))
        pos = match.end()
    return tokens


def _skip_to(tokens: list[Token], i: int, close: str) -> int:
    """The index just past the `close` token matching the opener at `i`."""
    opener = tokens[i].text
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text == opener and tokens[j].kind == "op":
            depth += 1
        elif tokens[j].text == close and tokens[j].kind == "op":
            depth -= 1
            if depth == 0:
                return j + 1
    raise ValueError(f"unbalanced {opener!r}")


def _matchers(tokens: list[Token], i: int) -> tuple[dict[str, list[tuple[str, str]]], int]:
    """Parse `{label op "value", ...}` starting at `i`; return matchers and the index past `}`."""
    found: dict[str, list[tuple[str, str]]] = {}
    i += 1
    while tokens[i].text != "}":
        label, op, value = tokens[i], tokens[i + 1], tokens[i + 2]
        if label.kind != "ident" or op.text not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"bad label matcher near {label.text!r}")
        if value.kind != "string":
            raise ValueError(f"label {label.text!r} is matched against {value.text!r}")
        found.setdefault(label.text, []).append((op.text, value.text[1:-1]))
        i += 3
        if tokens[i].text == ",":
            i += 1
    return found, i + 1


def selectors(expr: str) -> list[Selector]:
    """Every series selector in a PromQL expression."""
    tokens = tokenize(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if token.text == "[":
            i = _skip_to(tokens, i, "]")  # ranges and subqueries hold only durations
        elif token.kind == "ident" and token.text.lower() in GROUPING:
            i = _skip_to(tokens, i + 1, ")") if following == "(" else i + 1
        elif token.kind == "ident" and (
            token.text in AGGREGATIONS or token.text.lower() in KEYWORDS or following == "("
        ):
            i += 1  # an operator, keyword or function call, not a series
        elif token.kind == "ident":
            matchers: dict[str, list[tuple[str, str]]] = {}
            i += 1
            if following == "{":
                matchers, i = _matchers(tokens, i)
            found.append(Selector(token.text, frozenset(matchers) - {"__name__"}))
        elif token.text == "{":
            matchers, i = _matchers(tokens, i)
            names = matchers.get("__name__", [])
            if len(names) != 1 or names[0][0] != "=":
                raise ValueError(f"a selector without an exact __name__ in {expr!r}")
            found.append(Selector(names[0][1], frozenset(matchers) - {"__name__"}))
        else:
            i += 1
    return found


def exported_series(*registries: CollectorRegistry) -> dict[str, Family]:
    """Sample names the registries expose, with the labels each carries once scraped."""
    series: dict[str, Family] = {}
    for registry in registries:
        labels_of = _declared_labels(registry)
        for family in registry.collect():
            declared = labels_of.get(family.name, frozenset())
            sampled = {label for sample in family.samples for label in sample.labels}
            own = declared | sampled
            # A metric label that collides with a target label is renamed exported_<name>.
            stored = frozenset(f"exported_{x}" if x in TARGET_LABELS else x for x in own)
            for suffix in SUFFIXES[family.type]:
                extra = EXTRA_LABELS.get((family.type, suffix), frozenset())
                series[family.name + suffix] = Family(stored | extra | TARGET_LABELS)
    return series


def _declared_labels(registry: CollectorRegistry) -> dict[str, frozenset[str]]:
    # prometheus_client has no public way to read the label names of a labelled metric that
    # has no children yet (its family then has no samples), so read the collectors directly.
    labels: dict[str, frozenset[str]] = {}
    for collector in list(registry._collector_to_names):
        names = getattr(collector, "_labelnames", None)
        name = getattr(collector, "_name", None)
        if isinstance(names, tuple) and isinstance(name, str):
            labels[name] = frozenset(names)
    return labels


def daemon_registries() -> list[CollectorRegistry]:
    """One registry per service, filled the way the supervisor and the services fill them."""
    registries = []
    for service, metrics_class in (
        ("writer", WriterMetrics),
        ("scraper", ScraperMetrics),
        ("moderation", ModerationMetrics),
        ("notifier", NotifierMetrics),
    ):
        registry = new_registry()
        metrics_class(registry)
        ServiceHealthMetrics(registry, service)
        registries.append(registry)
    return registries


def alert_expressions() -> Iterator[tuple[str, str]]:
    """(alert name, expr) for every rule in the rule files prometheus.yml loads."""
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                yield rule.get("alert") or rule["record"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    """(panel title, expr) for every panel target in the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])


def dashboard_variable_queries() -> Iterator[tuple[str, str]]:
    """(variable name, query) for every Prometheus query variable of the dashboard."""
    for variable in json.loads(DASHBOARD.read_text())["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            yield variable["name"], query["query"] if isinstance(query, dict) else query


def problems(selector: Selector, exported: dict[str, Family]) -> list[str]:
    """Why a selector would match nothing the code exports (empty when it is fine)."""
    if selector.name in PROMETHEUS_SERIES:
        allowed = PROMETHEUS_SERIES[selector.name] | TARGET_LABELS
    elif selector.name in exported:
        allowed = exported[selector.name].labels
    else:
        return [f"{selector.name} is not exported by any service"]
    return [
        f"{selector.name} has no label {label!r} (it has {', '.join(sorted(allowed))})"
        for label in sorted(selector.labels - allowed)
    ]


@pytest.fixture(scope="module")
def exported() -> dict[str, Family]:
    return exported_series(*daemon_registries())


def test_selectors_parse_names_suffixes_and_matchers() -> None:
    """The extractor finds series (not functions, groupings or strings) and their matchers."""
    expr = """
      sum by (instance, reason) (increase(writer_dead_letters_total{reason=~"a|b"}[30m])) > 0
      or on (job) histogram_quantile(0.9, rate({__name__="x_bucket", le!="1"}[$__rate_interval]))
      unless ignoring (le) label_replace(up, "dst", "$1", "src", "(.*)") offset 5m
      and topk(3, y) - time() # a comment naming not_a_metric
    """
    assert selectors(expr) == [
        Selector("writer_dead_letters_total", frozenset({"reason"})),
        Selector("x_bucket", frozenset({"le"})),
        Selector("up", frozenset()),
        Selector("y", frozenset()),
    ]


def test_contract_rejects_unknown_names_wrong_suffixes_and_labels(
    exported: dict[str, Family],
) -> None:
    """The check fails for a missing metric, a counter without _total, and a wrong label."""
    assert problems(Selector("writer_queue_depth", frozenset()), exported) == []
    assert problems(Selector("writer_queue_depth_total", frozenset()), exported)
    assert problems(Selector("scraper_run_errors", frozenset()), exported)
    assert problems(Selector("scraper_run_errors_total", frozenset({"scrape_job"})), exported) == []
    # `job` there is the scrape target's name; no series of ours is stored as exported_job.
    assert problems(Selector("scraper_run_errors_total", frozenset({"job"})), exported) == []
    assert problems(Selector("scraper_run_errors_total", frozenset({"exported_job"})), exported)
    assert problems(Selector("writer_outcomes_total", frozenset({"account"})), exported)
    assert (
        problems(Selector("writer_request_duration_seconds_bucket", frozenset({"le"})), exported)
        == []
    )
    assert problems(Selector("writer_queue_depth", frozenset({"le"})), exported)
    assert problems(Selector("nonexistent_metric", frozenset()), exported)
    # prometheus_client names a counter's creation time x_created, not x_total_created.
    assert problems(Selector("twitstack_service_restarts_created", frozenset()), exported) == []
    assert problems(Selector("twitstack_service_restarts_total_created", frozenset()), exported)


def test_no_exported_label_clashes_with_a_target_label() -> None:
    """No series of ours carries `job` or `instance`, which Prometheus would rename exported_*."""
    clashes = [
        f"{name} has label {label!r}"
        for registry in daemon_registries()
        for name, labels in _declared_labels(registry).items()
        for label in sorted(labels & TARGET_LABELS)
    ]
    assert clashes == []
    assert any(
        "scrape_job" in labels
        for registry in daemon_registries()
        for labels in _declared_labels(registry).values()
    )


def test_alert_rules_name_only_exported_series(exported: dict[str, Family]) -> None:
    """Each alert expression selects series some service exports, with labels they carry."""
    found = [
        f"{alert}: {problem}"
        for alert, expr in alert_expressions()
        for selector in selectors(expr)
        for problem in problems(selector, exported)
    ]
    assert found == []
    assert len(list(alert_expressions())) >= 15


def test_dashboard_names_only_exported_series(exported: dict[str, Family]) -> None:
    """Each dashboard query selects series some service exports, with labels they carry."""
    expressions = list(dashboard_expressions())
    found = [
        f"{title}: {problem}"
        for title, expr in expressions
        for selector in selectors(expr)
        for problem in problems(selector, exported)
    ]
    assert found == []
    assert len(expressions) >= 20


def test_dashboard_variables_name_exported_labels(exported: dict[str, Family]) -> None:
    """label_values(metric, label) variables point at a real metric and one of its labels."""
    queries = list(dashboard_variable_queries())
    assert queries
    for name, query in queries:
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert match, f"variable {name}: expected label_values(metric, label), got {query!r}"
        (selector,) = selectors(match.group(1))
        labelled = Selector(selector.name, selector.labels | {match.group(2)})
        assert problems(labelled, exported) == [], name


def test_dashboard_covers_the_whole_flow() -> None:
    """The dashboard shows every step: scraped, drafted, pending, approved, executed, failed."""
    names = {s.name for _, expr in dashboard_expressions() for s in selectors(expr)}
    for needed in (
        "tweets_fetched_total",
        "scraper_drafts_total",
        "moderation_pending_requests",
        "moderation_decisions_total",
        "writer_outcomes_total",
        "writer_request_duration_seconds_bucket",
        "writer_rate_limit_remaining",
        "scraper_accounts",
        "twitstack_service_restarts_total",
    ):
        assert needed in names


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (Grafana's variables replaced by sample values)."""
    substitutions = {"$__rate_interval": "1m", "$__range": "1h", "$account": ".*"}
    rules = []
    for index, (_, expr) in enumerate(dashboard_expressions()):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
