"""Every series twitstack exports follows the one naming scheme docs/metrics.md states.

`<service>_<what>_<unit>` for a service's own series (service: writer, scraper, moderation,
notifier; on
that service's endpoint only), `twitstack_<what>` for the daemon's own and cross-service series,
and the seed's `tweets_fetched_total` as the single exception. Checked three ways: the services'
registries, every metric constructed anywhere in the package's source (so a metric made outside
the registries the table is built from cannot slip by), and docs/metrics.md itself.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.deploy.metric_table import ALL, DOC, Row, documented_rows, exported_rows

PACKAGE = Path(__file__).resolve().parents[2] / "twitstack"
SERVICES = ("writer", "scraper", "moderation", "notifier")
EXCEPTIONS = {"tweets_fetched_total": "scraper"}  # the seed's contract (ScraperClient)
_WORD = r"[a-z][a-z0-9]*"
SERVICE_NAME = re.compile(rf"^(?P<service>{'|'.join(SERVICES)})_{_WORD}(_{_WORD})*$")
DAEMON_NAME = re.compile(rf"^twitstack_{_WORD}(_{_WORD})*$")
LABEL = re.compile(rf"^{_WORD}(_{_WORD})*$")
# Sample-name suffixes prometheus_client adds to a family name; a family must not carry them.
_RESERVED = ("_created", "_bucket", "_count", "_sum", "_gcount", "_gsum")
_CONSTRUCTORS = frozenset({"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"})


def scheme_problems(service: str, name: str, kind: str, labels: tuple[str, ...] = ()) -> list[str]:
    """Why a series named `name` of type `kind`, exported by `service`, breaks the scheme."""
    found: list[str] = []
    own = SERVICE_NAME.match(name)
    if EXCEPTIONS.get(name) == service:
        pass
    elif own is not None:
        if service not in (own.group("service"), ALL):
            found.append(f"{name}: a {own.group('service')} series exported by {service}")
        elif service == ALL:
            found.append(f"{name}: on every service's endpoint, so it must be twitstack_*")
    elif DAEMON_NAME.match(name) is None:
        prefixes = ", ".join(f"{x}_" for x in SERVICES)
        found.append(f"{name}: neither {prefixes} nor twitstack_ (nor the seed's exception)")
    elif name.startswith(tuple(f"twitstack_{x}_" for x in SERVICES)):
        found.append(f"{name}: one service's series is named <service>_..., not twitstack_")
    if kind == "counter" and not name.endswith("_total"):
        found.append(f"{name}: a counter's series ends in _total")
    if kind != "counter" and name.endswith("_total"):
        found.append(f"{name}: only counters end in _total")
    if kind == "histogram" and not name.endswith(("_seconds", "_bytes")):
        found.append(f"{name}: a histogram names its unit (_seconds, _bytes, ...)")
    if "timestamp" in name and not name.endswith("_timestamp_seconds"):
        found.append(f"{name}: a timestamp is in _timestamp_seconds (Unix time)")
    if name.removesuffix("_total").endswith(_RESERVED):
        found.append(f"{name}: ends in a suffix Prometheus reserves for samples")
    found.extend(
        f"{name}: label {label!r} is not snake_case" for label in labels if not LABEL.match(label)
    )
    return found


def _row_problems(rows: set[Row]) -> list[str]:
    return [
        problem
        for row in sorted(rows)
        for problem in scheme_problems(row.service, row.name, row.type, row.labels)
    ]


def test_every_exported_series_follows_the_scheme() -> None:
    rows = exported_rows()
    assert len(rows) > 40
    assert _row_problems(rows) == []


def test_every_documented_series_follows_the_scheme() -> None:
    assert _row_problems(documented_rows()) == []


def _constructed_names() -> list[tuple[str, str, str]]:
    """(file, metric type, full series name) for each literal-named metric in the package."""
    found: list[tuple[str, str, str]] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        imports_prometheus = any(
            isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
            for node in ast.walk(tree)
        )
        if not imports_prometheus:
            continue  # collections.Counter and friends
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            kind = node.func.id
            if kind not in _CONSTRUCTORS or not node.args:
                continue
            first = node.args[0]
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            name = first.value
            if kind == "Counter" and not name.endswith("_total"):
                name += "_total"  # prometheus_client's own rule: the series is <name>_total
            if kind == "Info":
                name += "_info"
            found.append((str(path.relative_to(PACKAGE.parent)), kind.lower(), name))
    return found


def _owner(path: str, name: str) -> str:
    """The service a source file's metric belongs to: its package, else the daemon (`all`)."""
    for service in SERVICES:
        if path.startswith(f"twitstack/{service}/"):
            return service
    return ALL if name.startswith("twitstack_") else "unknown"


def test_every_metric_constructed_in_the_source_follows_the_scheme() -> None:
    """A metric built anywhere in twitstack/ (not only in the *Metrics classes) is checked."""
    constructed = _constructed_names()
    assert len(constructed) > 40
    problems = [
        f"{path}: {problem}"
        for path, kind, name in constructed
        for problem in scheme_problems(_owner(path, name), name, kind)
    ]
    assert problems == []
    assert ("twitstack/scraper/client.py", "counter", "tweets_fetched_total") in constructed


def test_the_scheme_check_rejects_misnamed_series() -> None:
    """Old names, a bare name, a wrong service prefix and a unitless histogram all fail."""
    assert scheme_problems("moderation", "moderation_decisions_total", "counter") == []
    assert scheme_problems("writer", "writer_worker_backoff_seconds", "gauge") == []
    assert scheme_problems("writer", "twitstack_quarantined_total", "counter") == []
    assert scheme_problems("scraper", "tweets_fetched_total", "counter") == []
    for service, name, kind in (
        ("moderation", "twitstack_moderation_decisions_total", "counter"),  # the old name
        ("writer", "tweets_fetched_total", "counter"),  # the exception is the scraper's only
        ("writer", "posts_sent_total", "counter"),
        ("scraper", "writer_queue_depth", "gauge"),
        ("all", "writer_queue_depth", "gauge"),
        ("moderation", "moderation_approval_latency", "histogram"),
        ("writer", "writer_queue_depth_total", "gauge"),
        ("writer", "writer_sends", "counter"),
        ("writer", "writer_token_expiry_timestamp", "gauge"),
        ("writer", "Writer_Queue", "gauge"),
    ):
        assert scheme_problems(service, name, kind), (service, name)
    assert scheme_problems("writer", "writer_retries_total", "counter", ("callable", "Bad-Label"))


def test_the_document_states_the_scheme() -> None:
    head = DOC.read_text().split("| service |", 1)[0]
    for needed in ("`<service>_<what>_<unit>`", "`twitstack_<what>`", "`tweets_fetched_total`"):
        assert needed in head
