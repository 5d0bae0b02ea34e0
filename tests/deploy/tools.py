"""What the deployment tests share: the repository's deployment files, the external checkers
(promtool, haproxy, systemd-analyze) and the metric names PromQL may use.

A test that needs a checker skips when it is missing, unless ``KDESK_REQUIRE_DEPLOY_TOOLS=1``
(CI, .ci/run) says it must run: then it fails, like tests/postgres.py ``required()``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

REQUIRE_ENV = "KDESK_REQUIRE_DEPLOY_TOOLS"
DEBIAN_PACKAGE = {"promtool": "prometheus", "haproxy": "haproxy", "systemd-analyze": "systemd"}


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


def tool(name: str) -> str:
    """The path of an external checker; skips the test when it is missing (fails under
    KDESK_REQUIRE_DEPLOY_TOOLS=1)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: `apt-get install {DEBIAN_PACKAGE.get(name, name)}`"
        if required():
            pytest.fail(f"{REQUIRE_ENV}=1, but {message}", pytrace=False)
        pytest.skip(message)
    return path


# Metric names -----------------------------------------------------------------------------------

# the series prometheus_client writes for each type of metric family
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}

# series from elsewhere that the dashboard and the alerts may read
EXTERNAL_METRICS = {
    "up",  # Prometheus itself, per target
    "haproxy_server_current_sessions",  # HAProxy's exporter (job haproxy)
}

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip


def desk_series() -> set[str]:
    """Every series name the desk's metrics can produce (knowledge.core.metrics, registered in
    prometheus_client's default registry), with the suffixes of their types."""
    import knowledge.core.metrics  # noqa: F401  (registers the metrics)

    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("kdesk_"):
            names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are neither functions,
    keywords, label names (inside {} or a by/without/on/ignoring list) nor in strings."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    # label lists: `sum by (le) (x)` reads as `sum (x)`, a function call
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        word = match.group(1)
        if word.lower() not in PROMQL_WORDS:
            names.add(word)
    return names
