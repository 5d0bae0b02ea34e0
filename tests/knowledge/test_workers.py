"""`kdesk worker` processes on a real Redis: a job queued by `kdesk ingest --no-wait` runs in a
worker; a worker SIGKILLed in the middle of a file leaves no half document, and the job is
run again by the next worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.core.db import make_engine, sqlite_url
from knowledge.core.settings import load_settings
from knowledge.desk.jobs import IngestJob, JobBook
from knowledge.desk.root import Desk
from tests.knowledge.test_jobs import agree
from tests.pdfs import make_pdf

KDESK = str(Path(sys.executable).with_name("kdesk"))
TOPICS = ["travel", "expenses", "security", "leave", "hardware", "onboarding", "privacy"]


def long_pdf(pages: int = 60) -> bytes:
    """Enough text that embedding it takes a worker some seconds (room to kill it)."""
    texts = []
    for n in range(pages):
        topic = TOPICS[n % len(TOPICS)]
        sentences = [
            f"Section {n + 1} covers {topic} rule {k}: staff in office {n * 7 + k} follow "
            f"procedure {topic[:3].upper()}-{n}-{k} and report to desk {k + n % 5}."
            for k in range(14)
        ]
        texts.append(f"{topic.title()} Handbook part {n + 1}\n\n" + " ".join(sentences))
    return make_pdf(texts, title="Operations Handbook")


@pytest.fixture
def env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    return os.environ | {
        "KDESK_DATA_DIR": str(tmp_path / "data"),
        "KDESK_REDIS_URL": redis_url,
        "KDESK_WORKER_HEARTBEAT_S": "3",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [KDESK, "worker"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def book(env: dict[str, str]) -> JobBook:
    data = Path(env["KDESK_DATA_DIR"])
    return JobBook(make_engine(sqlite_url(data / "kdesk.sqlite3")), data / "incoming")


def wait_for(book: JobBook, job_id: str, done: object, timeout_s: float, log: Path) -> IngestJob:
    deadline = time.monotonic() + timeout_s
    while True:
        job = book.get(job_id)
        if done(job):  # type: ignore[operator]
            return job
        if time.monotonic() > deadline:
            pytest.fail(f"job is {job.state}/{job.stage}; worker log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def test_a_worker_killed_mid_file_leaves_no_half_document_and_the_job_runs_again(
    env: dict[str, str], tmp_path: Path, embedder
):
    pdf = tmp_path / "handbook.pdf"
    pdf.write_bytes(long_pdf())
    queued = subprocess.run(
        [KDESK, "ingest", "--no-wait", "--json", "--collection", "Ops", str(pdf)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    [job] = json.loads(queued.stdout)["jobs"]
    assert job["state"] == "queued"
    jobs = book(env)
    log = tmp_path / "workers.log"

    first = start_worker(env, log)
    try:
        wait_for(jobs, job["job_id"], lambda j: j.stage == "embedding", 180, log)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert jobs.get(job["job_id"]).state == "running", "the dead worker's job is unfinished"

    second = start_worker(env, log)
    try:
        ended = wait_for(jobs, job["job_id"], lambda j: not j.active, 300, log)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=90) == 0, "a worker stops cleanly on SIGTERM"
    assert ended.state == "done", ended.describe()
    assert ended.attempts == 2 and ended.report is not None and ended.report.status == "added"

    desk = Desk(load_settings(data_dir=env["KDESK_DATA_DIR"]), embedder=embedder)
    [doc] = desk.store.documents(["Ops"])
    assert doc.pages == 60 and doc.chunks == ended.report.chunks
    agree(desk, "Ops")
    [hit, *_] = desk.search("Which procedure do staff in office 93 follow?", ["Ops"])
    assert hit.chunk.doc_id == doc.doc_id
