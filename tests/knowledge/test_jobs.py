"""Ingestion jobs: uploads queued and run in the background (a thread without Redis), their
progress and report in the database, claims that run a job once, and crashes that leave no
half document behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from knowledge.access.roles import Role
from knowledge.core.errors import PermissionDeniedError
from knowledge.desk.ingestion import Upload
from knowledge.desk.jobs import IngestJob, JobBook, JobError, run_job
from knowledge.desk.root import Desk
from knowledge.search.schema import ChunkRow
from tests.db import migrated_engine
from tests.pdfs import make_pdf

PAGES = [
    "Travel Policy\n\nEmployees book trains for trips under four hours. Flights need the "
    "approval of the department head, requested one week before the trip.",
    "Expenses\n\nHotel costs are reimbursed up to 150 euros per night in large cities and "
    "110 euros elsewhere; receipts are uploaded within 30 days.",
]


def policy_pdf(pages: list[str] = PAGES) -> bytes:
    return make_pdf(pages, title="Travel Policy")


def wait_until_ended(desk: Desk, job_id: str, timeout_s: float = 120) -> IngestJob:
    deadline = time.monotonic() + timeout_s
    while (job := desk.jobs.get(job_id)).active:
        assert time.monotonic() < deadline, f"job still {job.state}: {job.describe()}"
        time.sleep(0.05)
    return job


def chunk_rows(desk: Desk, collection: str) -> int:
    with Session(desk.engine) as session:
        query = select(func.count()).select_from(ChunkRow).where(ChunkRow.collection == collection)
        return int(session.scalar(query) or 0)


def agree(desk: Desk, collection: str) -> None:
    """Store, database and vector index tell the same story: every stored chunk has its
    vector, no vector lacks its chunk, every document has its PDF and no PDF is left over."""
    documents = desk.store.documents([collection])
    assert chunk_rows(desk, collection) == sum(d.chunks for d in documents)
    assert desk.store.index.count(collection) == chunk_rows(desk, collection)
    kept = {Path(d.pdf_path).name for d in desk.store.documents()}
    assert {p.name for p in desk.settings.files_dir.glob("*.pdf")} == kept
    assert desk.store.pending_writers() == []


def test_an_upload_returns_at_once_as_a_queued_job_that_a_thread_runs(desk: Desk):
    [job] = desk.submit([Upload("travel.pdf", policy_pdf())], "HR", owner="ann", tags=["Travel"])
    assert job.state == "queued" and job.owner == "ann" and job.collection == "HR"
    ended = wait_until_ended(desk, job.job_id)
    assert ended.state == "done" and ended.attempts == 1 and ended.fraction == 1.0
    assert ended.report is not None and ended.report.status == "added"
    assert (ended.report.pages, ended.pages) == (2, 2)
    assert ended.report.tags == ("travel",)
    assert ended.describe() == "added"
    assert not desk.jobs.staged(job.job_id).exists(), "the staged upload is removed"
    [hit, *_] = desk.search("How much is a hotel night reimbursed?", ["HR"])
    assert hit.chunk.file_name == "travel.pdf"
    agree(desk, "HR")


def test_a_refused_file_is_a_failed_job_with_the_reason_and_no_retry(desk: Desk):
    [job] = desk.submit([Upload("notes.pdf", b"just some notes")], "HR", owner="ann")
    ended = wait_until_ended(desk, job.job_id)
    assert ended.state == "failed" and ended.attempts == 1
    assert ended.error and "not a PDF" in ended.error
    assert ended.describe().startswith("failed: ") and "not a PDF" in ended.describe()
    assert desk.store.documents() == [] and not desk.jobs.staged(job.job_id).exists()


def test_bad_tags_queue_nothing(desk: Desk):
    with pytest.raises(Exception, match="40 characters"):
        desk.submit([Upload("travel.pdf", policy_pdf())], "HR", tags=["x" * 41])
    assert desk.jobs.recent() == []


def test_jobs_outlive_the_process_and_each_user_sees_their_own(desk: Desk):
    desk.roles.save(Role("hr", pages=("knowledge",), upload_collections=("HR",)), "test")
    desk.accounts.add("ann", ["hr"], "test", password="a long test password")
    desk.accounts.add("bob", [], "test", password="a long test password")
    [job] = desk.for_user("ann").submit([Upload("travel.pdf", policy_pdf())], "HR")
    wait_until_ended(desk, job.job_id)
    with pytest.raises(PermissionDeniedError):
        desk.for_user("bob").submit([Upload("travel.pdf", policy_pdf())], "HR")

    later = Desk(desk.settings, embedder=desk.embedder)  # a restart, or another replica
    assert [j.job_id for j in later.for_user("ann").jobs()] == [job.job_id]
    assert later.for_user("bob").jobs() == []
    assert later.jobs.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0}


def test_a_job_is_claimed_once_and_taken_over_when_its_worker_stops_beating(tmp_path: Path):
    book = JobBook(migrated_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}"), tmp_path, 30.0)
    job = book.create(Upload("a.pdf", b"%PDF"), "HR", "ann")
    first = book.claim(job.job_id, "worker-1", max_attempts=2)
    assert first is not None and first.job.attempts == 1 and first.job.state == "running"
    assert book.claim(job.job_id, "worker-2", max_attempts=2) is None, "alive elsewhere"

    book.heartbeat_s = 0.0  # worker-1's heartbeat is now too old: it is presumed dead
    taken = book.claim(job.job_id, "worker-2", max_attempts=2)
    assert taken is not None and taken.job.attempts == 2
    assert book.claim(job.job_id, "worker-3", max_attempts=2) is None, "out of attempts"
    gave_up = book.get(job.job_id)
    assert (
        gave_up.state == "failed" and gave_up.error and "gave up after 2 attempts" in gave_up.error
    )
    assert not book.staged(job.job_id).exists()


class SimulatedCrash(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no except clause."""


def test_a_crash_between_the_vectors_and_the_commit_is_undone_by_the_next_attempt(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
):
    job = desk.jobs.create(Upload("travel.pdf", policy_pdf()), "HR", "ann")

    def crash(*args: object, **kwargs: object) -> None:
        raise SimulatedCrash

    with monkeypatch.context() as patch:
        patch.setattr(desk.store, "_swap_in", crash)
        with pytest.raises(SimulatedCrash):
            run_job(desk, job.job_id, "doomed-worker")
    # what the dead attempt left: vectors and a PDF without any chunk rows
    assert desk.store.pending_writers() == [job.job_id]
    assert desk.store.index.count("HR") > 0 and chunk_rows(desk, "HR") == 0
    assert list(desk.settings.files_dir.glob("*.pdf"))
    assert desk.jobs.get(job.job_id).state == "running"

    desk.jobs.heartbeat_s = 0.0  # its worker is gone
    ended = run_job(desk, job.job_id, "next-worker")
    assert ended.state == "done" and ended.attempts == 2
    [doc] = desk.store.documents(["HR"])
    assert doc.chunks == ended.report.chunks if ended.report else False
    agree(desk, "HR")


def test_a_broken_attempt_is_retried_and_then_succeeds(desk: Desk, monkeypatch: pytest.MonkeyPatch):
    job = desk.jobs.create(Upload("travel.pdf", policy_pdf()), "HR", "ann")
    real = desk.embedder.embed_passages
    with monkeypatch.context() as patch:
        patch.setattr(
            desk.embedder, "embed_passages", lambda *a: (_ for _ in ()).throw(OSError("disk"))
        )
        with pytest.raises(JobError, match="disk"):
            run_job(desk, job.job_id)
    assert desk.embedder.embed_passages == real
    waiting = desk.jobs.get(job.job_id)
    assert waiting.state == "queued" and waiting.error and "disk" in waiting.error
    assert waiting.describe() == "waiting for a worker (attempt 2)"
    ended = run_job(desk, job.job_id)
    assert ended.state == "done" and ended.attempts == 2
    agree(desk, "HR")


def test_the_last_attempt_failing_fails_the_job(desk: Desk, monkeypatch: pytest.MonkeyPatch):
    desk.settings.job_retries = 0
    job = desk.jobs.create(Upload("travel.pdf", policy_pdf()), "HR", "ann")
    monkeypatch.setattr(
        desk.embedder, "embed_passages", lambda *a: (_ for _ in ()).throw(OSError("disk"))
    )
    ended = run_job(desk, job.job_id)
    assert ended.state == "failed" and ended.error and "disk" in ended.error
    assert desk.store.documents() == [] and desk.store.pending_writers() == []
    assert not desk.jobs.staged(job.job_id).exists()


def test_kdesk_ingest_no_wait_then_kdesk_jobs(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    import json

    from knowledge.cli import common
    from knowledge.cli.main import main

    monkeypatch.setattr(common, "open_desk", lambda: desk)
    (tmp_path / "travel.pdf").write_bytes(policy_pdf())
    assert (
        main(["ingest", str(tmp_path / "travel.pdf"), "--collection", "HR", "--no-wait", "--json"])
        == 0
    )
    [queued] = json.loads(capsys.readouterr().out)["jobs"]
    assert queued["state"] == "queued" and queued["owner"].startswith("cli:")
    wait_until_ended(desk, queued["job_id"])

    assert main(["jobs", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    [job] = listed["jobs"]
    assert job["job_id"] == queued["job_id"] and job["state"] == "done"
    assert job["summary"] == "added" and job["report"]["chunks"] >= 1
    assert listed["counts"]["done"] == 1
    assert main(["jobs", "--active"]) == 0
    assert capsys.readouterr().out.strip() == "No ingestion jobs."


def test_a_running_job_tells_its_stage_and_the_pages_done(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
):
    job = desk.jobs.create(Upload("travel.pdf", policy_pdf()), "HR", "ann")
    seen: list[str] = []
    record = desk.jobs.progress

    def progress(job_id: str, *args: object) -> None:
        record(job_id, *args)  # type: ignore[arg-type]
        seen.append(desk.jobs.get(job_id).describe())

    monkeypatch.setattr(desk.jobs, "progress", progress)
    monkeypatch.setattr("knowledge.desk.jobs.PROGRESS_EVERY_S", 0.0)  # every event, here
    run_job(desk, job.job_id)
    assert seen[0] == "reading 0%"
    assert "embedding 95%, page 2 of 2" in seen
    assert seen[-1] == "preparing search 100%, page 2 of 2"
    ended = desk.jobs.get(job.job_id)
    assert (ended.pages, ended.pages_done) == (2, 2)


def test_the_app_resumes_the_jobs_an_earlier_run_left_and_a_one_off_command_does_not(
    desk: Desk,
):
    left = desk.jobs.create(Upload("travel.pdf", policy_pdf()), "HR", "ann")  # never run
    [mine] = desk.submit([Upload("other.pdf", policy_pdf(PAGES[:1]))], "HR")  # like kdesk ingest
    assert wait_until_ended(desk, mine.job_id).state == "done"
    assert desk.jobs.get(left.job_id).state == "queued", "not this process's job"
    desk.close()

    app = Desk(desk.settings, embedder=desk.embedder)  # the app starting again
    app.start_background()
    try:
        assert wait_until_ended(app, left.job_id).state == "done"
    finally:
        app.close()
