"""docs/metrics.md lists exactly the series each service's /metrics exports."""

from __future__ import annotations

import re

from prometheus_client.exposition import generate_latest

from tests.deploy.metric_table import ALL, Row, documented_rows, exported_rows, service_registries


def _key(row: Row) -> tuple[str, str, str, tuple[str, ...]]:
    return (row.service, row.name, row.type, row.labels)


def test_the_table_matches_the_registries() -> None:
    """Same series, types and label names; a missing or extra row is named."""
    documented = {_key(row) for row in documented_rows()}
    exported = {_key(row) for row in exported_rows()}
    assert sorted(exported - documented) == [], "exported but not in docs/metrics.md"
    assert sorted(documented - exported) == [], "in docs/metrics.md but not exported"


def test_every_documented_family_is_in_its_services_exposition() -> None:
    """Each row's family is declared (`# TYPE`) in the text /metrics serves for its service."""
    registries = service_registries()
    for row in documented_rows():
        services = list(registries) if row.service == ALL else [row.service]
        for service in services:
            text = generate_latest(registries[service]).decode()
            family = re.sub(r"_(total|info)$", "", row.name) if row.type != "gauge" else row.name
            assert f"# TYPE {family}" in text, f"{row.name} missing from {service}'s /metrics"


def test_the_check_would_catch_a_missing_row() -> None:
    documented = documented_rows()
    assert len(documented) == len(exported_rows()) > 40
    assert any(row.name == "tweets_fetched_total" for row in documented)
