"""deploy/prometheus: promtool accepts the scrape config and the alert rules, the rules' unit
tests pass (each alert fires on bad series, stays quiet on good ones) and can fail, the scrape
jobs find the compose services, and the rules read only metrics the desk exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import compose
from tests.deploy.tools import DEPLOY, EXTERNAL_METRICS, desk_series, metric_names, tool

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_scrape_config() -> None:
    done = promtool("check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 rule files found" in done.stdout


def test_promtool_accepts_the_rules() -> None:
    done = promtool("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_the_alert_unit_tests_pass() -> None:
    done = promtool("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


QUEUED = 'kdesk_ingest_jobs{state="queued"}'
WORKERS_UP = 'sum(up{job="kdesk-worker"})'
# (text in alerts.yml, a wrong version of it that the unit tests must reject)
BROKEN_RULES = [
    (f"max({QUEUED}) > 50", f"sum({QUEUED}) > 50"),  # the same queue seen by every process
    (f"({WORKERS_UP} or vector(0)) == 0", f"{WORKERS_UP} == 0"),  # no worker discovered at all
    ("[5m]))) > 30", "[5m]))) > 60"),  # the answer budget
    ("kdesk_model_errors_total[10m])) >= 3", "kdesk_model_errors_total[10m])) >= 1"),
]


@pytest.mark.parametrize(("good", "bad"), BROKEN_RULES)
def test_the_alert_unit_tests_catch_a_broken_rule(tmp_path: Path, good: str, bad: str) -> None:
    alerts = (PROMETHEUS / "alerts.yml").read_text()
    assert alerts.count(good) == 1
    (tmp_path / "alerts.yml").write_text(alerts.replace(good, bad))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    done = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in tests:
        for case in group.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    alerts = {rule["alert"] for rule in rules()}
    assert alerts - firing == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"
    assert (firing | quiet) <= alerts


def test_the_rules_read_only_metrics_that_exist() -> None:
    known = desk_series() | EXTERNAL_METRICS
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']}: {sorted(used - known)}"


def test_the_required_alerts_exist() -> None:
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in rules()}
    assert "kdesk_model_errors_total" in exprs["KdeskModelErrors"]
    total = 'kdesk_answer_stage_seconds_bucket{stage="total"}[5m]'
    assert exprs["KdeskAnswerSlow"].startswith(
        f"histogram_quantile(0.95, sum by (le) (rate({total}))) >"
    )
    assert "kdesk_ingest_job_failures_total" in exprs["KdeskIngestJobFailures"]
    assert 'kdesk_ingested_files_total{status="failed"}' in exprs["KdeskIngestFilesFailing"]
    assert 'kdesk_ingest_jobs{state="queued"}' in exprs["KdeskIngestBacklog"]
    assert exprs["KdeskAppReplicaDown"] == 'up{job="kdesk-app"} == 0'
    assert exprs["KdeskWorkerDown"] == 'up{job="kdesk-worker"} == 0'
    for rule in rules():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_expected_replica_count_is_the_compose_one() -> None:
    (missing,) = [r for r in rules() if r["alert"] == "KdeskAppReplicasMissing"]
    replicas = compose.load()["services"]["app"]["deploy"]["replicas"]
    assert missing["expr"].rstrip().endswith(f"< {replicas}")


def test_scrape_jobs_find_the_compose_services() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    services = compose.load()["services"]
    for job, service in (("kdesk-app", "app"), ("kdesk-api", "api"), ("kdesk-worker", "worker")):
        (sd,) = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A"
        port = int(compose.environment(services[service])["KDESK_METRICS_PORT"])
        assert sd["port"] == port
        assert str(port) in services[service]["expose"]
    # the jobs the rules select exist
    for rule in rules():
        for job in ("kdesk-app", "kdesk-worker"):
            if f'job="{job}"' in rule["expr"]:
                assert job in jobs
    (haproxy,) = jobs["haproxy"]["static_configs"]
    assert haproxy["targets"] == ["proxy:8404"]
    assert config["rule_files"] == ["alerts.yml"]
