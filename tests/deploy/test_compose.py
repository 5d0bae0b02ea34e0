"""docker-compose.yml: valid against the Compose Specification's JSON schema (vendored in
tests/fixtures/compose-spec.json, its source in compose-spec.SOURCE), and what the deployment
needs of it: two app replicas, settings that exist, volumes, health checks, the app wired to
PostgreSQL / Redis / Chroma / Ollama, and no database or queue port on the host."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from jsonschema import Draft7Validator
from sqlalchemy.engine import make_url

from knowledge.core.settings import Settings
from tests.deploy import compose
from tests.deploy.tools import ROOT

SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec.json"
# services whose ports must never reach the host: data, queue, vectors, model, workers
INTERNAL = {
    "postgres": 5432,
    "redis": 6379,
    "chroma": 8000,
    "ollama": 11434,
}
DESK_SERVICES = ("app", "api", "worker", "migrate")  # run the desk, with its settings
LONG_RUNNING = (
    "app",
    "api",
    "worker",
    "postgres",
    "redis",
    "chroma",
    "ollama",
    "prometheus",
    "grafana",
)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return compose.load()


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["services"]  # type: ignore[no-any-return]


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    return [
        f"{'/'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def test_the_vendored_schema_is_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    assert schema["title"] == "Compose Specification"
    source = (SCHEMA.parent / "compose-spec.SOURCE").read_text()
    assert "compose-spec/compose-spec" in source
    assert re.search(r"\b[0-9a-f]{40}\b", source), "the source names the commit"


def test_compose_file_follows_the_compose_specification(spec: dict[str, Any]) -> None:
    assert schema_errors(spec) == []


def test_the_schema_check_rejects_a_broken_compose_file(spec: dict[str, Any]) -> None:
    broken = copy.deepcopy(spec)
    broken["services"]["app"]["replica"] = 2  # not a service key
    broken["services"]["redis"]["healthcheck"]["intervall"] = "10s"
    errors = schema_errors(broken)
    assert any("replica" in e for e in errors), errors
    assert any("intervall" in e for e in errors), errors


def test_two_app_replicas_behind_the_proxy(services: dict[str, Any]) -> None:
    app = services["app"]
    assert app["deploy"]["replicas"] == 2
    # a fixed container name or host port would allow only one replica
    assert "container_name" not in app
    assert compose.published_container_ports(app) == []
    assert compose.published_container_ports(services["proxy"]) == [8080]
    assert "app" in services["proxy"]["depends_on"]


def test_every_kdesk_variable_is_a_setting(services: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    used = {
        (service, key)
        for service, spec in services.items()
        for key in compose.environment(spec)
        if key.startswith("KDESK_")
    }
    used |= {("${...}", name) for name in compose.variables() if name.startswith("KDESK_")}
    assert used, "the desk's services set KDESK_* settings"
    unknown = {(where, key) for where, key in used if key[len("KDESK_") :].lower() not in fields}
    assert unknown == set()


@pytest.mark.parametrize("service", DESK_SERVICES)
def test_the_desk_services_settings_are_valid(
    services: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KDESK_"):
            monkeypatch.delenv(key)
    for key, value in compose.environment(services[service]).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert str(settings.data_dir) == "/data"
    assert settings.metrics_port == 9108
    assert settings.metrics_host == "0.0.0.0"
    assert settings.model_backend == "ollama"
    assert settings.max_upload_mb == 200


def test_the_desk_services_share_one_configuration(services: dict[str, Any]) -> None:
    app = compose.environment(services["app"])
    for service in DESK_SERVICES:
        assert compose.environment(services[service]) == app, service
        assert services[service]["image"] == services["app"]["image"]
    assert services["chroma"]["image"] == services["app"]["image"], "client and server match"


def test_the_app_points_at_the_compose_services(services: dict[str, Any]) -> None:
    env = compose.environment(services["app"])
    postgres = compose.environment(services["postgres"])

    database = make_url(env["KDESK_DATABASE_URL"])
    assert database.drivername == "postgresql+psycopg"
    assert (database.host, database.port) == ("postgres", 5432)
    assert database.database == postgres["POSTGRES_DB"]
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.password == compose.required_placeholder("POSTGRES_PASSWORD")

    redis = make_url(env["KDESK_REDIS_URL"])
    assert (redis.drivername, redis.host, redis.port) == ("redis", "redis", 6379)

    chroma = make_url(env["KDESK_CHROMA_URL"])
    command = services["chroma"]["command"]
    assert command[:2] == ["chroma", "run"]
    assert (chroma.host, chroma.port) == ("chroma", int(command[command.index("--port") + 1]))
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--path") + 1] == "/data/chroma"

    ollama = make_url(env["KDESK_OLLAMA_HOST"])
    assert (ollama.host, ollama.port) == ("ollama", 11434)

    for name in ("postgres", "redis", "chroma", "ollama"):
        assert name in services
        assert name in services["app"]["depends_on"]


def test_migrations_run_once_before_the_replicas(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["migrate"]
    for service in ("app", "worker"):
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["kdesk", "worker"]
    assert services["app"]["command"] == ["app"]


def test_the_api_serves_inside_the_network_behind_the_proxy(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KDESK_"):
            monkeypatch.delenv(key)
    api = services["api"]
    for key, value in compose.environment(api).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert api["command"] == ["kdesk", "serve"] and settings.api_host == "0.0.0.0"
    assert [int(port) for port in api["expose"]] == [settings.api_port, settings.metrics_port]
    assert any(f":{settings.api_port}/health" in part for part in api["healthcheck"]["test"])
    # citations link to where clients reach the API: through the proxy
    assert settings.api_url == "http://localhost:8080"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "api" in services["proxy"]["depends_on"]


def test_no_database_or_queue_port_reaches_the_host(services: dict[str, Any]) -> None:
    for name in (*INTERNAL, "api", "worker", "migrate"):
        assert compose.published_container_ports(services[name]) == [], name
    for name, spec in services.items():
        published = set(compose.published_container_ports(spec))
        assert not published & set(INTERNAL.values()), name
        assert 9108 not in published, f"{name}: metrics stay inside the network"


def test_monitoring_ports_are_bound_to_loopback(spec: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for entry in compose.raw()["services"][name]["ports"]:
            assert str(entry).startswith("127.0.0.1:"), name


def test_named_volumes_are_declared_and_shared(services: dict[str, Any], spec: dict[str, Any]):
    declared = set(spec["volumes"])
    used = set()
    for name, service in services.items():
        for source, _ in compose.volume_mounts(service):
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"
            else:
                used.add(source)
    assert used == declared, "every named volume is declared, every declared one used"

    def target(service: str, volume: str) -> str:
        return dict(compose.volume_mounts(services[service]))[volume]

    # one data volume for the PDFs and indexes, at KDESK_DATA_DIR of every desk process
    for service in DESK_SERVICES:
        assert target(service, "kdesk-data") == "/data"
    assert target("chroma", "chroma-data") == "/data/chroma"
    assert target("postgres", "postgres-data") == "/var/lib/postgresql/data"
    assert target("redis", "redis-data") == "/data"
    assert target("ollama", "ollama-models") == "/root/.ollama"


def test_long_running_services_have_health_checks(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert any("/_stcore/health" in part for part in services["app"]["healthcheck"]["test"])
    assert any(":8501/" in part for part in services["app"]["healthcheck"]["test"])
    assert any("/api/v2/heartbeat" in part for part in services["chroma"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    # whoever waits for a service to be healthy waits for one that has a check
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for dependency in depends:
            condition = depends[dependency] if isinstance(depends, dict) else {}
            if condition.get("condition") == "service_healthy":
                assert dependency in LONG_RUNNING, f"{name} waits for {dependency}"


def test_the_proxy_and_monitoring_mount_the_deploy_configs(services: dict[str, Any]) -> None:
    proxy = dict(compose.volume_mounts(services["proxy"]))
    assert proxy["./deploy/haproxy/haproxy.cfg"] == "/usr/local/etc/haproxy/haproxy.cfg"
    prometheus = dict(compose.volume_mounts(services["prometheus"]))
    # rule_files are read beside prometheus.yml
    assert prometheus["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert prometheus["./deploy/prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    grafana = dict(compose.volume_mounts(services["grafana"]))
    assert grafana["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_the_env_example_lists_what_compose_requires() -> None:
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", compose.COMPOSE_FILE.read_text()))
    assert required == {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    for name in required:
        assert re.search(rf"^{name}=", example, re.MULTILINE), name
    for name in re.findall(r"^#?\s*(KDESK_\w+)=", example, re.MULTILINE):
        assert name in compose.variables(), f"{name} in the example but not in the compose file"
