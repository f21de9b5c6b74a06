"""deploy/ holds together: compose, Dockerfile, systemd units, Prometheus, Grafana, runbook."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from twitstack.core.config import Settings
from twitstack.core.sections.scraper import ScraperSettings
from twitstack.core.sections.writer import WriterSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RUNBOOK = ROOT / "docs" / "runbook.md"


def load_yaml(relative: str) -> Any:
    return yaml.safe_load((DEPLOY / relative).read_text())


def unit_directives(path: Path) -> dict[str, list[str]]:
    """`Key=value` lines of a unit's [Service] section; keys may repeat, as in systemd."""
    directives: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


# Rule files prometheus.yml loads, each with its promtool tests in <name>_test.yml.
RULE_FILES = ("alerts.yml", "outages.yml")


def alerts() -> list[dict[str, Any]]:
    return [
        rule
        for name in RULE_FILES
        for group in load_yaml(f"prometheus/{name}")["groups"]
        for rule in group["rules"]
    ]


def alert_rule_tests() -> Iterator[dict[str, Any]]:
    for name in RULE_FILES:
        for case in load_yaml(f"prometheus/{name.removesuffix('.yml')}_test.yml")["tests"]:
            yield from case.get("alert_rule_test", [])


# --- compose and Dockerfile ----------------------------------------------------------------


def test_compose_runs_redis_twitstack_prometheus_and_grafana() -> None:
    """The compose file parses and declares the four services."""
    compose = load_yaml("compose.yaml")
    assert set(compose["services"]) == {"redis", "twitstack", "prometheus", "grafana"}
    assert compose["services"]["twitstack"]["depends_on"]["redis"]["condition"] == (
        "service_healthy"
    )


def test_compose_redis_keeps_an_append_only_file() -> None:
    """Redis runs with AOF on and an explicit fsync policy."""
    command = load_yaml("compose.yaml")["services"]["redis"]["command"]
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] in ("everysec", "always")


def test_compose_files_it_references_exist() -> None:
    """Every bind mount, the build context, the Dockerfile and required env files exist."""
    compose = load_yaml("compose.yaml")
    named_volumes = set(compose.get("volumes") or {})
    checked = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source in named_volumes:
                continue
            assert source.startswith("."), f"{name}: unexpected volume source {source!r}"
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            checked += 1
        build = service.get("build")
        if build:
            context = DEPLOY / build["context"]
            assert (context / build["dockerfile"]).is_file()
            assert (context / "pyproject.toml").is_file()
            checked += 1
        for env_file in service.get("env_file", []):
            if isinstance(env_file, str) or env_file.get("required", True):
                path = env_file if isinstance(env_file, str) else env_file["path"]
                assert (DEPLOY / path).is_file(), f"{name}: {path} does not exist"
    assert checked >= 5


def test_compose_mounts_match_prometheus_and_grafana_paths() -> None:
    """Prometheus finds its rule file next to its config; Grafana finds the dashboards."""
    services = load_yaml("compose.yaml")["services"]
    prometheus_targets = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    rule_files = load_yaml("prometheus/prometheus.yml")["rule_files"]
    for rule_file in rule_files:
        assert f"/etc/prometheus/{rule_file}" in prometheus_targets
    provider = load_yaml("grafana/provisioning/dashboards/twitstack.yml")["providers"][0]
    grafana_targets = {v.split(":")[1] for v in services["grafana"]["volumes"]}
    assert provider["options"]["path"] in grafana_targets


def test_dockerfile_installs_the_package_and_runs_the_daemon() -> None:
    """python:3.11-slim, `pip install .` of sources that exist, `twitstack run`, not as root."""
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"pip install \.", text)
    assert 'ENTRYPOINT ["twitstack"]' in text
    assert 'CMD ["run"]' in text
    assert re.search(r"^USER (?!root)\S+$", text, re.M)
    for copied in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), source


# --- systemd -------------------------------------------------------------------------------

REQUIRED_DIRECTIVES = {
    "Type": "notify",
    "Restart": "on-failure",
    "DynamicUser": "yes",
    "ProtectSystem": "strict",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
}


@pytest.mark.parametrize("unit", ["twitstack.service", "twitstack-writer@.service"])
def test_systemd_unit_is_hardened_and_watched(unit: str) -> None:
    """notify + watchdog, restart on failure, a dynamic user with a state directory, hardening."""
    directives = unit_directives(DEPLOY / "systemd" / unit)
    for key, value in REQUIRED_DIRECTIVES.items():
        assert directives.get(key) == [value], key
    assert int(directives["WatchdogSec"][0]) > 0
    assert directives["StateDirectory"][0]
    assert any("twitstack run" in line for line in directives["ExecStart"])


@pytest.mark.parametrize("unit", ["twitstack.service", "twitstack-writer@.service"])
def test_systemd_unit_hands_the_root_only_config_to_its_dynamic_user(unit: str) -> None:
    """/etc/twitstack stays root's (0750), so --config names a LoadCredential copy of it."""
    directives = unit_directives(DEPLOY / "systemd" / unit)
    [exec_start] = directives["ExecStart"]
    config = exec_start.split("--config", 1)[1].split()[0]
    credential_dir, _, credential = config.partition("/")
    assert credential_dir in ("${CREDENTIALS_DIRECTORY}", "%d"), config
    loaded = dict(line.split(":", 1) for line in directives["LoadCredential"])
    assert loaded[credential] == "/etc/twitstack/twitstack.toml"
    assert directives["ConfigurationDirectoryMode"] == ["0750"]


# --- Prometheus and Grafana ----------------------------------------------------------------


def test_prometheus_scrapes_the_ports_the_services_listen_on() -> None:
    """The scrape targets use the default metrics ports of writer, scraper and moderation."""
    config = load_yaml("prometheus/prometheus.yml")
    ports = {
        job["job_name"]: {
            int(target.rsplit(":", 1)[1])
            for static in job["static_configs"]
            for target in static["targets"]
        }
        for job in config["scrape_configs"]
    }
    assert ports["twitstack-writer"] == {WriterSettings().metrics_port}
    assert ports["twitstack-scraper"] == {ScraperSettings().metrics_port}
    assert ports["twitstack-moderation"] == {Settings.model_fields["api_port"].default}
    moderation = next(
        j for j in config["scrape_configs"] if j["job_name"] == "twitstack-moderation"
    )
    assert moderation.get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == list(RULE_FILES)


def test_prometheus_names_the_notifier_port_ready_to_uncomment() -> None:
    """The notifier runs only with a channel, so its job ships commented out, on its port."""
    from twitstack.core.sections.notifier import NotifierSettings

    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert f'#     - targets: ["twitstack:{NotifierSettings().metrics_port}"]' in text
    assert "twitstack-notifier" not in {
        job["job_name"] for job in load_yaml("prometheus/prometheus.yml")["scrape_configs"]
    }


def test_grafana_dashboard_uses_the_provisioned_datasource() -> None:
    """The dashboard's datasource variable defaults to the uid the provisioning creates."""
    datasource = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "twitstack.json").read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["current"]["value"] == datasource["uid"]
    assert datasource["url"] == "http://prometheus:9090"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    """alerts_test.yml proves each alert fires in one case and stays silent in another."""
    firing: set[str] = set()
    silent: set[str] = set()
    for check in alert_rule_tests():
        (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set()
    assert names - silent == set()


def test_every_alert_has_a_runbook_entry() -> None:
    """Each alert's runbook_url names a section of docs/runbook.md with what to check and do."""
    runbook = RUNBOOK.read_text()
    headings = {
        match.group(1).lower(): match.start() for match in re.finditer(r"^## (\w+)$", runbook, re.M)
    }
    for rule in alerts():
        name = rule["alert"]
        assert rule["annotations"]["runbook_url"] == f"docs/runbook.md#{name.lower()}"
        assert name.lower() in headings, f"docs/runbook.md has no '## {name}' section"
        start = headings[name.lower()]
        section = runbook[start : runbook.find("\n## ", start + 1)]
        for part in ("**Means**", "**Check**", "**Do**"):
            assert part in section, f"{name}: the runbook section lacks {part}"


# --- deploy/check (systemd-analyze, promtool) ----------------------------------------------


@pytest.mark.skipif(
    not (
        shutil.which("systemd-analyze") and shutil.which("promtool") and shutil.which("twitstack")
    ),
    reason="deploy/check needs systemd-analyze, promtool and the twitstack script on PATH",
)
def test_deploy_check_passes() -> None:
    """systemd-analyze verify, promtool check config/rules and promtool test rules all pass."""
    result = subprocess.run(
        [str(DEPLOY / "check")], capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemd units: ok" in result.stdout
    assert "SUCCESS" in result.stdout


def test_grafana_dashboard_has_a_notifier_row() -> None:
    """Deliveries by outcome, outbox depth and dead letters of the notifier each have a panel
    (test_dashboard_live.py checks that they show data from a running notifier)."""
    from tests.deploy.test_metrics_contract import dashboard_expressions

    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "twitstack.json").read_text())
    assert any(p["type"] == "row" and "Notifier" in p["title"] for p in dashboard["panels"])
    exprs = [expr for _title, expr in dashboard_expressions()]
    for family in ("notifier_notifications_total", "notifier_outbox_depth",
                   "notifier_dead_letter_depth"):  # fmt: skip
        assert any(family in expr for expr in exprs), family
    deliveries = next(e for e in exprs if "notifier_notifications_total" in e)
    assert "outcome" in deliveries
