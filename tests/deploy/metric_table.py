"""The table of every metric series in docs/metrics.md, built from the services' registries.

`python -m tests.deploy.metric_table` prints the table rows; tests/deploy/test_metric_table.py
checks the document against them (names, types and label names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.deploy.test_metrics_contract import _declared_labels
from twitstack.core.metrics import ServiceHealthMetrics, new_registry
from twitstack.moderation.metrics import ModerationMetrics
from twitstack.notifier.metrics import NotifierMetrics
from twitstack.scraper.metrics import ScraperMetrics
from twitstack.writer.metrics import WriterMetrics
from twitstack.writer.retry_hooks import writer_retry_hook

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
ALL = "all"  # the daemon's own series, on every service's endpoint
_ROW = re.compile(r"^\| (\w+) \| `(\w+)` \| (\w+) \| ([^|]*) \| [^|]* \|$")


@dataclass(frozen=True, order=True)
class Row:
    service: str
    name: str  # the family name as /metrics's `# TYPE` line gives it
    type: str
    labels: tuple[str, ...]
    help: str = ""


def service_registries() -> dict[str, CollectorRegistry]:
    """Each service's registry, filled as the supervisor and the service fill it."""
    registries: dict[str, CollectorRegistry] = {}
    for service, metrics_class in (
        ("writer", WriterMetrics),
        ("scraper", ScraperMetrics),
        ("moderation", ModerationMetrics),
        ("notifier", NotifierMetrics),
    ):
        registry = new_registry()
        metrics_class(registry)
        if service == "writer":
            writer_retry_hook(registry)  # the supervisor installs it for the writer
        ServiceHealthMetrics(registry, service)
        registries[service] = registry
    return registries


def exported_rows() -> set[Row]:
    """One row per metric family a service's /metrics serves: its series name, type, labels.

    A counter is listed by its `_total` series, an info by its `_info` series; a histogram's
    `_bucket`, `_count` and `_sum` (and every counter's `_created`) follow from the type.
    """
    rows: set[Row] = set()
    for service, registry in service_registries().items():
        declared = _declared_labels(registry)
        for family in registry.collect():
            labels = set(declared.get(family.name, frozenset()))
            labels |= {x for sample in family.samples for x in sample.labels} - {"le"}
            suffix = {"counter": "_total", "info": "_info"}.get(family.type, "")
            owner = (
                ALL
                if family.name.startswith(("twitstack_service_", "twitstack_build"))
                else service
            )
            rows.add(
                Row(
                    owner,
                    family.name + suffix,
                    family.type,
                    tuple(sorted(labels)),
                    family.documentation,
                )
            )
    return rows


def documented_rows() -> set[Row]:
    """The rows of docs/metrics.md's table (help text ignored)."""
    rows: set[Row] = set()
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        service, name, kind, labels = match.groups()
        names = tuple(sorted(x.strip(" `") for x in labels.split(",") if x.strip(" `-")))
        rows.add(Row(service, name, kind, names))
    return rows


def render() -> str:
    lines = ["| service | series | type | labels | meaning |", "|---|---|---|---|---|"]
    for row in sorted(exported_rows()):
        labels = ", ".join(f"`{x}`" for x in row.labels) or "-"
        lines.append(f"| {row.service} | `{row.name}` | {row.type} | {labels} | {row.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
