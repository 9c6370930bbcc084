"""Prometheus rules (promtool), Alertmanager routing (amtool), Grafana JSON, docker-compose."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.support.tools import require

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, check=False, capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_alerting_rules_pass_their_unit_tests() -> None:
    promtool = require("promtool")
    checked = run(promtool, "check", "rules", str(DEPLOY / "prometheus/rules.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", str(DEPLOY / "prometheus/rules_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_prometheus_config_is_valid() -> None:
    promtool = require("promtool")
    checked = run(promtool, "check", "config", str(DEPLOY / "prometheus/prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_paging_concern_has_a_rule() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus/rules.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert by_name["PosguardSettlementFeedGap"]["labels"]["severity"] == "critical"
    assert by_name["PosguardWorkerDown"]["labels"]["severity"] == "critical"
    for name in (
        "PosguardMoneyAtRisk",
        "PosguardConsumerLag",
        "PosguardDeadLetterRate",
        "PosguardInputRewinds",
        "PosguardCasesOverdue",
    ):
        assert by_name[name]["labels"]["severity"] == "warning"


def test_alertmanager_routes_pages_and_inhibits_missing_settlements() -> None:
    amtool = require("amtool")
    config = DEPLOY / "alertmanager/alertmanager.yml"
    checked = run(amtool, "check-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def receiver(*labels: str) -> str:
        out = run(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert receiver("alertname=PosguardSettlementFeedGap", "severity=critical") == "pager"
    assert receiver("alertname=PosguardWorkerDown", "severity=critical") == "pager"
    assert receiver("alertname=PosguardMissingSettlements", "severity=warning") == "ops-channel"
    doc = yaml.safe_load(config.read_text())
    inhibit = doc["inhibit_rules"][0]
    assert inhibit["source_matchers"] == ['alertname="PosguardSettlementFeedGap"']
    assert "PosguardMissingSettlements" in inhibit["target_matchers"][0]


def test_grafana_dashboard_structure() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/posguard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "posguard_events_in_total",
        "posguard_alerts_raised_total",
        "posguard_money_at_risk_minor",
        "posguard_settlement_watermark_lag_seconds",
        "posguard_consumer_lag_messages",
        "posguard_dead_letters_total",
        "posguard_model_score_bucket",
    ):
        assert metric in exprs, metric
    for p in panels:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"])
        assert p["datasource"]["uid"] == "prometheus"
        for t in p["targets"]:
            assert t["refId"] and t["expr"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/posguard.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_dashboard_queries_only_metrics_the_worker_exports() -> None:
    from prometheus_client import CollectorRegistry

    from streams.worker.metrics import Metrics

    registry = CollectorRegistry()
    Metrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names.update(family.name + s for s in suffixes.get(family.type, []))
    rules = (DEPLOY / "prometheus/rules.yml").read_text()
    dashboard = (DEPLOY / "grafana/dashboards/posguard.json").read_text()
    used = set(re.findall(r"posguard_[a-z_]+", rules + dashboard))
    unknown = {u for u in used if u not in names}
    assert not unknown, unknown


def test_compose_file_is_valid() -> None:
    compose = require("docker-compose")
    out = run(compose, "config", env={"POSGUARD_TOKEN": "test-token"})
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    services = doc["services"]
    for name in (
        "kafka",
        "topics",
        "worker-1",
        "worker-2",
        "simulator",
        "prometheus",
        "alertmanager",
        "grafana",
    ):
        assert name in services, name
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert (
        services["worker-1"]["environment"]["POSGUARD_GROUP"]
        == (services["worker-2"]["environment"]["POSGUARD_GROUP"])
    )
    assert (ROOT / "deploy/Dockerfile").is_file()
    missing = run(compose, "config", env={"POSGUARD_TOKEN": ""})
    assert missing.returncode != 0 and "POSGUARD_TOKEN" in missing.stderr


def test_secured_compose_override_is_valid_and_points_every_client_at_sasl_ssl() -> None:
    compose = require("docker-compose")
    files = ["-f", "docker-compose.yml", "-f", "docker-compose.secured.yml"]
    env = {"POSGUARD_TOKEN": "test-token", "POSGUARD_KAFKA_PASSWORD": "scram-pw"}
    out = run(compose, *files, "config", env=env)
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    kafka = services["kafka"]["environment"]
    assert "SASL_SSL://:9094" in kafka["KAFKA_LISTENERS"]
    assert kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    for name in ("worker-1", "worker-2", "simulator"):
        worker = services[name]["environment"]
        assert worker["POSGUARD_BROKER_URL"] == "kafka://kafka:9094", name
        assert worker["POSGUARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert worker["POSGUARD_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert worker["POSGUARD_KAFKA_SSL_CA_LOCATION"] == "/certs/ca.pem"
        assert any("/certs" in str(v) for v in services[name]["volumes"])
    assert "kafka:9094" in services["simulator"]["command"]
    assert "SCRAM-SHA-512" in " ".join(services["topics"]["command"])
    missing = run(
        compose, *files, "config", env={"POSGUARD_TOKEN": "t", "POSGUARD_KAFKA_PASSWORD": ""}
    )
    assert missing.returncode != 0 and "POSGUARD_KAFKA_PASSWORD" in missing.stderr
