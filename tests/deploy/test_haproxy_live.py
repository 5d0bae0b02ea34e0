"""deploy/haproxy/haproxy.cfg running for real in front of two stand-in replicas.

The config is used as it is, except for the addresses only Docker has: its DNS server
(127.0.0.11, here a small DNS responder on loopback that answers `app` with two addresses, like
Docker's DNS for a service with two replicas) and the ports (free ones instead of 8080, 8404 and
8501). Cookie stickiness, the websocket upgrade and the fail-over are then those of the real
file."""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.test_haproxy import CONFIG
from tests.deploy.tools import tool
from tests.postgres import free_port

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
REPLICAS = ("127.0.0.2", "127.0.0.3")  # loopback addresses: every 127/8 address is local
API = "127.0.0.4"  # the API service's one replica (`kdesk serve`)
RECORDS = {"app": REPLICAS, "api": (API,)}


class DnsHandler(socketserver.BaseRequestHandler):
    """Answers A queries for `app` with the replicas' addresses and for `api` with the API's;
    anything else: no records."""

    def handle(self) -> None:
        data, sock = self.request
        ident, _flags, questions = struct.unpack("!HHH", data[:6])
        end = 12
        labels = []
        while data[end]:
            labels.append(data[end + 1 : end + 1 + data[end]].decode())
            end += data[end] + 1
        qtype = struct.unpack("!H", data[end + 1 : end + 3])[0]
        question = data[12 : end + 5]
        answers = b""
        count = 0
        name = ".".join(labels).lower()
        if qtype == 1:
            for address in RECORDS.get(name, ()):
                answers += struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + socket.inet_aton(address)
                count += 1
        rcode = 0 if name in RECORDS else 3  # NXDOMAIN
        header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, questions, count, 0, 0)
        sock.sendto(header + question + answers, self.client_address)


def replica_handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Replica(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.headers.get("Upgrade", "").lower() == "websocket":
                key = self.headers["Sec-WebSocket-Key"] + WEBSOCKET_GUID
                accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("Sec-WebSocket-Accept", accept)
                self.send_header("X-Replica", name)
                self.end_headers()
                self.wfile.write(f"ws:{name}".encode())
                self.wfile.flush()
                self.close_connection = True
                return
            body = b"ok" if self.path in ("/_stcore/health", "/health") else name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Replica


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # health checks and closed tunnels hang up early: not the test's business


def serve(server: socketserver.BaseServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


class Proxy:
    def __init__(self, port: int, replicas: dict[str, QuietHTTPServer]) -> None:
        self.port = port
        self.replicas = replicas

    def get(self, cookie: str | None = None, path: str = "/") -> tuple[str, str | None]:
        """(which replica answered, the Set-Cookie header)"""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
            response = connection.getresponse()
            body = response.read().decode()
            assert response.status == 200, (response.status, body)
            return body, response.getheader("Set-Cookie")
        finally:
            connection.close()


def no_port_rewrites_missed(config: str) -> None:
    lines = [line.split("#", 1)[0] for line in config.splitlines()]
    for docker_only in ("127.0.0.11", ":8080", ":8404", ":8501", ":8100"):
        assert not any(docker_only in line for line in lines), docker_only


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    haproxy = tool("haproxy")
    dns = socketserver.UDPServer(("127.0.0.1", 0), DnsHandler)
    serve(dns)
    app_port = free_port()
    replicas: dict[str, QuietHTTPServer] = {}
    for index, address in enumerate(REPLICAS, 1):
        try:
            server = QuietHTTPServer((address, app_port), replica_handler(f"replica-{index}"))
        except OSError as exc:
            dns.shutdown()
            for started in replicas.values():
                started.shutdown()
            pytest.skip(f"cannot listen on {address}: {exc}")
        serve(server)
        replicas[f"replica-{index}"] = server
    api_port = free_port()
    api = QuietHTTPServer((API, api_port), replica_handler("api"))
    serve(api)
    http_port, stats_port = free_port(), free_port()
    config = CONFIG.read_text()
    config = config.replace("127.0.0.11:53", f"127.0.0.1:{dns.server_address[1]}")
    config = config.replace("bind :8080", f"bind 127.0.0.1:{http_port}")
    config = config.replace("bind :8404", f"bind 127.0.0.1:{stats_port}")
    config = config.replace("app:8501", f"app:{app_port}")
    config = config.replace("api:8100", f"api:{api_port}")
    no_port_rewrites_missed(config)
    path = tmp_path / "haproxy.cfg"
    path.write_text(config)
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = Proxy(http_port, replicas)
    try:
        wait_for_both_replicas(running, process)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        dns.shutdown()
        for server in [*replicas.values(), api]:
            server.shutdown()
            server.server_close()


def wait_for_both_replicas(proxy: Proxy, process: subprocess.Popen[str]) -> None:
    """Until the resolvers filled both server slots from DNS (round robin reaches both)."""
    deadline = time.monotonic() + 30
    seen: set[str] = set()
    while seen != set(proxy.replicas):
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"haproxy exited:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"haproxy did not reach both replicas (saw {sorted(seen)})")
        try:
            seen.add(proxy.get()[0])
        except (OSError, AssertionError, http.client.HTTPException):
            time.sleep(0.3)


def sticky_cookie(set_cookie: str | None) -> str:
    assert set_cookie, "the proxy sets its cookie"
    match = re.match(r"(KDESK_REPLICA=[^;]+)", set_cookie)
    assert match, set_cookie
    assert "httponly" in set_cookie.lower()
    return match.group(1)


def test_a_browser_stays_on_its_replica(proxy: Proxy) -> None:
    first, set_cookie = proxy.get()
    cookie = sticky_cookie(set_cookie)
    answers = {proxy.get(cookie)[0] for _ in range(12)}
    assert answers == {first}
    # without the cookie, new browsers are spread over both replicas
    assert {proxy.get()[0] for _ in range(6)} == set(proxy.replicas)


def test_each_replica_has_its_own_cookie(proxy: Proxy) -> None:
    cookies: dict[str, str] = {}
    for _ in range(6):
        replica, set_cookie = proxy.get()
        cookies[replica] = sticky_cookie(set_cookie)
    assert len(set(cookies.values())) == 2
    for replica, cookie in cookies.items():
        assert proxy.get(cookie)[0] == replica


def test_the_websocket_goes_to_the_same_replica(proxy: Proxy) -> None:
    replica, set_cookie = proxy.get()
    cookie = sticky_cookie(set_cookie)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(
            (
                "GET /_stcore/stream HTTP/1.1\r\nHost: desk\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n"
            ).encode()
        )
        received = b""
        try:
            while f"ws:{replica}".encode() not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            pass
    head = received.decode(errors="replace")
    assert head.startswith("HTTP/1.1 101"), head
    assert f"X-Replica: {replica}" in head or f"x-replica: {replica}" in head.lower()
    assert f"ws:{replica}" in head, "bytes after the upgrade pass through"


def test_a_browser_moves_on_when_its_replica_is_down(proxy: Proxy) -> None:
    replica, set_cookie = proxy.get()
    cookie = sticky_cookie(set_cookie)
    proxy.replicas[replica].shutdown()
    proxy.replicas[replica].server_close()
    (other,) = set(proxy.replicas) - {replica}
    assert proxy.get(cookie)[0] == other


def test_the_api_paths_go_to_the_api_service(proxy: Proxy) -> None:
    deadline = time.monotonic() + 30
    while True:  # until the resolvers filled the API's slot
        try:
            if proxy.get(path="/v1/models")[0] == "api":
                break
        except (OSError, AssertionError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "haproxy did not reach the API"
        time.sleep(0.3)
    for path in ("/v1/chat/completions", "/api/search", "/mcp", "/mcp/", "/docs", "/openapi.json"):
        answered, set_cookie = proxy.get(path=path)
        assert answered == "api" and set_cookie is None, path  # no stickiness for the API
    for path in ("/", "/apiary", "/v1", "/static/app.js"):
        assert proxy.get(path=path)[0] in proxy.replicas, path
