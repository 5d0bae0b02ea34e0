"""A throwaway Redis server for the job and team-server tests, from Debian's redis-server.

It listens on 127.0.0.1 only, on a free port, keeps nothing on disk, and is stopped at the end.
Without the binary the tests that need it skip, unless ``KDESK_REQUIRE_REDIS=1`` (CI) says
they must run: then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.postgres import free_port

REQUIRE_ENV = "KDESK_REQUIRE_REDIS"
START_TIMEOUT_S = 20


class RedisUnavailable(RuntimeError):
    """No redis-server can run here."""


def required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server not found: `apt-get install redis-server`")
        root = Path(tempfile.mkdtemp(prefix="kdesk-redis-"))
        port = free_port()
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(root), "--protected-mode", "yes"]
        log = (root / "redis.log").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        server = cls(process, port, root)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(root / 'redis.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return server
            except OSError:
                time.sleep(0.1)
        server.stop()
        raise RuntimeError("redis-server did not answer in time")

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
