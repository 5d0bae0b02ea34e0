"""The team server's topology without containers: PostgreSQL, Redis, a Chroma server, an
Ollama-protocol test model, one `kdesk worker` and app replicas (`streamlit run` on their own
ports), all real processes on 127.0.0.1 sharing one data directory, as docker-compose.yml runs
them (docs/deploy.md)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.core.settings import Settings, load_settings
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.chroma_server import ChromaServer
from tests.fake_ollama import FakeOllama
from tests.pages.support import FILE_NAME, MODEL, ROOT, free_port, grounded_reply, handbook_pdf
from tests.postgres import PostgresServer
from tests.redis_server import RedisServer

PASSWORD = "a long topology password"
COLLECTION = "Handbooks"
START_TIMEOUT_S = 120
KDESK = str(Path(sys.executable).with_name("kdesk"))


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""
    metrics_url: str = ""

    def output(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


@dataclass
class Cluster:
    root: Path
    env: dict[str, str]
    settings: Settings
    ollama: FakeOllama
    worker: Process
    apps: list[Process] = field(default_factory=list)

    def desk(self) -> Desk:
        """A desk of this process on the cluster's stores (for set-up and checks)."""
        return Desk(self.settings)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.output()}" for p in [self.worker, *self.apps])


def _spawn(name: str, command: list[str], env: dict[str, str], root: Path) -> Process:
    log = root / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, process, log)


def _wait_http(process: Process, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.output()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} did not answer {url}:\n{process.output()}")


def start_app(cluster: Cluster, name: str) -> Process:
    port, metrics = free_port(), free_port()
    env = cluster.env | {"KDESK_METRICS_PORT": str(metrics)}
    command = [
        *(sys.executable, "-m", "streamlit", "run", "app.py"),
        *("--server.headless", "true", "--server.port", str(port)),
        *("--server.address", "127.0.0.1", "--server.fileWatcherType", "none"),
        *("--browser.gatherUsageStats", "false"),
    ]
    app = _spawn(name, command, env, cluster.root)
    app.url, app.metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics}/metrics"
    return app


def set_up_people(desk: Desk, accounts: int, limit: int) -> list[str]:
    """A support lead who uploads, and ``accounts`` employees whose role allows ``limit``
    questions an hour; returns the employees' names."""
    desk.roles.save(
        Role(
            "lead",
            pages=("chat", "knowledge"),
            collections=(COLLECTION,),
            upload_collections=(COLLECTION,),
        ),
        "topology",
    )
    desk.roles.save(
        Role(
            "staff",
            pages=("chat",),
            collections=(COLLECTION,),
            rate_limit=RateLimit(requests=limit, window_s=3600),
        ),
        "topology",
    )
    desk.accounts.add("lead", ["lead"], "topology", password=PASSWORD)
    names = [f"employee{n}" for n in range(1, accounts + 1)]
    for name in names:
        desk.accounts.add(name, ["staff"], "topology", password=PASSWORD)
    return names


@contextlib.contextmanager
def running_cluster(
    root: Path, *, replicas: int = 2, accounts: int = 2, limit: int = 8
) -> Iterator[tuple[Cluster, list[str]]]:
    """Everything started, the people set up and the handbook ingested by the worker; yields
    the cluster and the employees' names, and stops every process at the end."""
    root.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        postgres = PostgresServer.start()
        stack.callback(postgres.stop)
        database_url = postgres.create_database()
        redis = RedisServer.start()
        stack.callback(redis.stop)
        chroma = ChromaServer.start()
        stack.callback(chroma.stop)
        ollama = stack.enter_context(FakeOllama(reply=grounded_reply, models=[MODEL]))
        env = os.environ | {
            "KDESK_DATA_DIR": str(root / "data"),
            "KDESK_DATABASE_URL": database_url,
            "KDESK_REDIS_URL": redis.url,
            "KDESK_CHROMA_URL": chroma.url,
            "KDESK_MODEL_BACKEND": "ollama",
            "KDESK_OLLAMA_HOST": ollama.url,
            "KDESK_OLLAMA_MODEL": MODEL,
            "KDESK_INDEX_REFRESH_S": "1",
            "KDESK_WORKER_HEARTBEAT_S": "10",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
        }
        settings = load_settings(
            data_dir=root / "data",
            database_url=database_url,
            redis_url=redis.url,
            chroma_url=chroma.url,
        )
        desk = Desk(settings)
        names = set_up_people(desk, accounts, limit)
        worker_metrics = free_port()
        worker = _spawn(
            "worker", [KDESK, "worker"], env | {"KDESK_METRICS_PORT": str(worker_metrics)}, root
        )
        worker.metrics_url = f"http://127.0.0.1:{worker_metrics}/metrics"
        stack.callback(worker.stop)
        cluster = Cluster(root, env, settings, ollama, worker)
        for n in range(replicas):
            app = start_app(cluster, f"app{n + 1}")
            stack.callback(app.stop)
            cluster.apps.append(app)
        _wait_http(worker, worker.metrics_url)
        for app in cluster.apps:
            _wait_http(app, f"{app.url}/_stcore/health")
        [job] = desk.submit([Upload(FILE_NAME, handbook_pdf())], COLLECTION, owner="lead")
        wait_for_job(desk, job.job_id, cluster)
        yield cluster, names


def wait_for_job(desk: Desk, job_id: str, cluster: Cluster, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while (job := desk.jobs.get(job_id)).active:
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job.describe()} after {timeout_s}s:\n{cluster.logs()}")
        time.sleep(0.2)
    if job.state != "done":
        raise RuntimeError(f"job ended {job.describe()}:\n{cluster.logs()}")
