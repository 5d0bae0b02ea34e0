"""The Grafana dashboard and its provisioning: valid JSON, every query parses as PromQL and
reads only metrics the desk exports (knowledge.core.metrics, with prometheus_client's suffixes:
a renamed metric breaks this test), and the provisioning points at the compose services."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import compose
from tests.deploy.tools import DEPLOY, EXTERNAL_METRICS, desk_series, metric_names, tool

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "knowledge-desk.json"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]


def datasource_uid() -> str:
    provisioned = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose.load()["services"]
    return str(source["uid"])


def test_the_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "knowledge-desk"
    assert dashboard["title"] == "Knowledge Desk"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in panels(dashboard):
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


def test_every_query_uses_the_provisioned_prometheus(dashboard: dict[str, Any]) -> None:
    uid = datasource_uid()
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid


def test_every_metric_the_dashboard_reads_exists(dashboard: dict[str, Any]) -> None:
    known = desk_series() | EXTERNAL_METRICS
    used = set()
    for expr in queries(dashboard):
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr}: {sorted(names - known)}"
        used |= names
    # the main figures are on it
    for name in (
        "kdesk_questions_total",
        "kdesk_answer_stage_seconds_bucket",
        "kdesk_model_errors_total",
        "kdesk_ingested_files_total",
        "kdesk_ingest_jobs",
        "kdesk_ingest_job_failures_total",
    ):
        assert name in used, name


def test_metric_names_are_read_from_promql() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, stage) (rate(kdesk_x_bucket{stage="a b"}[5m])))'
    assert metric_names(expr) == {"kdesk_x_bucket"}
    assert metric_names('(count(up{job="a"} == 1) or vector(0)) < 2') == {"up"}
    assert metric_names("a / on (x) group_left (y) b offset 5m * 1e3") == {"a", "b"}
    assert "kdesk_questions" not in desk_series(), "the counter's series end in _total"
    assert "kdesk_questions_total" in desk_series()


def test_every_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, expr in enumerate(queries(dashboard))
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_loads_the_dashboard_from_its_mount() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/knowledge-desk.yml").read_text())
    (entry,) = provider["providers"]
    mounts = dict(compose.volume_mounts(compose.load()["services"]["grafana"]))
    assert mounts["./deploy/grafana/dashboards"] == entry["options"]["path"]
