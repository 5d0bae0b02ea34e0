"""A throwaway Chroma server for the tests of the server mode (KDESK_CHROMA_URL).

``ChromaServer.start()`` runs ``chroma run --path TMP --host 127.0.0.1 --port FREE`` (the
``chroma`` next to the running Python, else the PATH), waits until its heartbeat answers and
``stop()`` ends it and removes its directory. Each test takes its own collections (the names
are hashed from the desk's collection names, so tests use distinct names or call ``reset``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.postgres import free_port

START_TIMEOUT_S = 60


class ChromaUnavailable(RuntimeError):
    """No ``chroma`` command to run a server with."""


def chroma_command() -> str:
    beside = Path(sys.executable).with_name("chroma")
    if beside.is_file():
        return str(beside)
    found = shutil.which("chroma")
    if found is None:
        raise ChromaUnavailable("no `chroma` command (pip install chromadb)")
    return found


@dataclass
class ChromaServer:
    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: object = field(default=None, repr=False)

    @classmethod
    def start(cls) -> ChromaServer:
        server = cls(Path(tempfile.mkdtemp(prefix="kdesk-chroma-")))
        try:
            server._start(chroma_command())
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def _start(self, command: str) -> None:
        for attempt in range(3):  # the free port may be taken before the server binds it
            self.port = free_port()
            log = self.log_path.open("ab")
            self._log = log
            self.process = subprocess.Popen(
                [command, "run", "--path", str(self.root / "db"), "--host", "127.0.0.1"]
                + ["--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
            )
            if self._wait_for_heartbeat():
                return
            self._end_process()
            if attempt == 2:
                raise RuntimeError(f"chroma run did not start:\n{self.log_tail()}")

    def _wait_for_heartbeat(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as reply:
                    if reply.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def reset(self) -> None:
        """Drop every collection (a clean server for the next test)."""
        import chromadb
        from chromadb.config import Settings

        client = chromadb.HttpClient(
            host="127.0.0.1", port=self.port, settings=Settings(anonymized_telemetry=False)
        )
        for collection in client.list_collections():
            client.delete_collection(collection.name)

    def _end_process(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._log is not None:
            with contextlib.suppress(Exception):
                self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def stop(self) -> None:
        """End the server and remove its directory; safe to call twice."""
        try:
            self._end_process()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
