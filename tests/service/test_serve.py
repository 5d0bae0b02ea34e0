"""`kdesk serve` as a user starts it: a process of its own on the port given, its citations'
links naming that address, stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from knowledge.access.roles import Role
from knowledge.core.settings import Settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.pdfs import make_pdf
from tests.service.live import free_port

PASSWORD = "a long serve-test password"


def test_kdesk_serve_answers_on_the_port_given_with_links_to_it(tmp_path: Path, embedder):
    data_dir = tmp_path / "data"
    desk = Desk(Settings(data_dir=data_dir, model_backend="ollama"), embedder=embedder)
    pages = ["Badge renewals are handled by the front desk every Monday morning."]
    [report] = desk.ingest([Upload("badges.pdf", make_pdf(pages, title="Badges"))], "general")
    desk.roles.save(Role("staff", pages=("chat",), collections=("*",)), "test")
    desk.accounts.add("sam", ["staff"], "test", password=PASSWORD)
    _, secret = desk.api_keys.create("sam", "test", ["read"], expires_days=None)
    desk.close()

    port = free_port()
    env = os.environ | {
        "KDESK_DATA_DIR": str(data_dir),
        "KDESK_MODEL_BACKEND": "ollama",
        "KDESK_OLLAMA_HOST": "http://127.0.0.1:9",  # no model needed to search
        "KDESK_WARM_UP": "false",
    }
    command = [sys.executable, "-m", "knowledge.cli.main", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1].decode()[-2000:]
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "kdesk serve did not start"
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            found = client.post("/api/search", json={"query": "When are badges renewed?"})
            [first, *_] = found.json()["passages"]
            assert first["doc_id"] == report.doc_id
            assert first["link"].startswith(f"{base}/api/documents/{report.doc_id}/pages/")
            page = client.get(first["link"])
            assert page.status_code == 200 and "front desk" in page.json()["text"]
            assert client.get("/health", headers={}).status_code == 200
        assert httpx.get(base + "/api/documents").status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode in (0, 130), server.communicate()[1].decode()[-2000:]
