"""deploy/haproxy/haproxy.cfg: `haproxy -c` accepts it (offline: the replicas' DNS name does not
resolve here, which must be its only complaint), and it does what Streamlit replicas need:
cookie stickiness, websockets, Docker DNS discovery, Streamlit's health check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy import compose
from tests.deploy.tools import DEPLOY, tool

CONFIG = DEPLOY / "haproxy" / "haproxy.cfg"


def haproxy_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True, timeout=60
    )


def sections(text: str) -> dict[str, list[str]]:
    """'backend kdesk_app' -> its lines (comments dropped)."""
    result: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        content = line.split("#", 1)[0].rstrip()
        if not content.strip():
            continue
        if not content[0].isspace():
            current = " ".join(content.split())
            result[current] = []
        elif current is not None:
            result[current].append(" ".join(content.split()))
    return result


def test_haproxy_accepts_the_config() -> None:
    done = haproxy_check(CONFIG)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "Configuration file is valid" in output
    assert "[ALERT]" not in output
    warnings = [line for line in output.splitlines() if "[WARNING]" in line]
    offline = ("could not resolve address 'app'", "could not resolve address 'api'")
    assert all(any(o in line for o in offline) for line in warnings), warnings


def test_haproxy_check_rejects_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "haproxy.cfg"
    broken.write_text(CONFIG.read_text().replace("balance roundrobin", "balance round-robin"))
    assert haproxy_check(broken).returncode != 0


def test_sticky_websocket_backend_found_through_docker_dns() -> None:
    config = sections(CONFIG.read_text())
    backend = config["backend kdesk_app"]
    cookie = next(line for line in backend if line.startswith("cookie "))
    assert {"insert", "indirect", "nocache", "httponly"} <= set(cookie.split())
    template = next(line for line in backend if line.startswith("server-template "))
    _, _, count, address, *options = template.split()
    host, port = address.split(":")
    services = compose.load()["services"]
    assert host == "app" and host in services
    assert int(port) == 8501
    assert int(count) >= services["app"]["deploy"]["replicas"]
    assert options[options.index("resolvers") + 1] == "docker"
    assert options[options.index("init-addr") + 1].split(",")[-1] == "none"
    assert "check" in options
    assert "option httpchk GET /_stcore/health" in backend
    assert "option redispatch" in config["defaults"]
    # a websocket lives on as a tunnel after the upgrade
    assert any(re.fullmatch(r"timeout tunnel \d+[smh]", line) for line in config["defaults"])
    assert "nameserver docker_dns 127.0.0.11:53" in config["resolvers docker"]


def test_the_api_paths_go_to_the_api_service_without_stickiness() -> None:
    config = sections(CONFIG.read_text())
    frontend = config["frontend http"]
    acls = [line.split()[2:] for line in frontend if line.startswith("acl api_path ")]
    assert {"path_beg", "/v1/", "/api/", "/mcp/"} <= set(acls[0])
    assert {"path", "/mcp", "/docs", "/redoc", "/openapi.json"} <= set(acls[1])
    assert "use_backend kdesk_api if api_path" in frontend
    assert "default_backend kdesk_app" in frontend
    backend = config["backend kdesk_api"]
    assert not any(line.startswith("cookie ") for line in backend), "each request has its key"
    assert "option httpchk GET /health" in backend
    template = next(line for line in backend if line.startswith("server-template "))
    _, _, _, address, *options = template.split()
    host, port = address.split(":")
    services = compose.load()["services"]
    assert host == "api" and services["api"]["command"] == ["kdesk", "serve"]
    assert int(port) == int(compose.environment(services["api"])["KDESK_API_PORT"])
    assert options[options.index("resolvers") + 1] == "docker"


def test_the_proxy_listens_where_compose_publishes() -> None:
    config = sections(CONFIG.read_text())
    proxy = compose.load()["services"]["proxy"]
    assert "bind :8080" in config["frontend http"]
    assert compose.published_container_ports(proxy) == [8080]
    stats = config["frontend stats"]
    assert "bind :8404" in stats
    assert any("prometheus-exporter" in line for line in stats)


@pytest.mark.parametrize("line", ["mode http"])
def test_http_mode(line: str) -> None:
    assert line in sections(CONFIG.read_text())["defaults"]
