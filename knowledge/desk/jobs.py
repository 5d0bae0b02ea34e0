"""Ingestion jobs: an upload becomes a row in ``ingest_jobs`` and a staged file; whoever runs
jobs (a `kdesk worker` process on Redis, or a thread of the app when no Redis is configured,
knowledge.desk.workers) calls ``run_job`` with its id.

The database is the truth about a job, so its progress and report survive a page reload, a
sign-out and the process that ran it. A job is claimed with one conditional UPDATE (queued, or
running with a heartbeat older than ``KDESK_WORKER_HEARTBEAT_S``), so a message delivered twice
runs once, and a job whose worker died (SIGKILL, OOM) is taken over by the next delivery: what
the dead attempt wrote and never committed is discarded first (``discard_pending``), so no half
document is ever left. A job runs at most ``KDESK_JOB_RETRIES`` + 1 times.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Boolean, Engine, Float, Integer, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from knowledge.core import metrics
from knowledge.core.db import Base, UTCDateTime, utc_now
from knowledge.core.errors import NotFoundError
from knowledge.core.types import IngestReport
from knowledge.desk.ingestion import IngestProgress, Upload

if TYPE_CHECKING:
    from knowledge.desk.root import Desk

JobState = Literal["queued", "running", "done", "failed"]
ACTIVE: tuple[JobState, ...] = ("queued", "running")
PROGRESS_EVERY_S = 0.5  # at most this often a progress row update (stage changes always)
log = logging.getLogger("kdesk.jobs")


class JobRow(Base):
    __tablename__ = "ingest_jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    file_name: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(Integer)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list; NULL: keep
    contracts: Mapped[bool] = mapped_column(Boolean, default=False)
    # the doc_id of the earlier version the file replaces (chosen at upload)
    supersedes: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(40), default="waiting")
    fraction: Mapped[float] = mapped_column(Float, default=0.0)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pages_done: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    report: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON IngestReport
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class IngestJob:
    job_id: str
    collection: str
    owner: str
    file_name: str
    size_bytes: int
    state: JobState
    stage: str
    fraction: float
    pages: int | None
    pages_done: int | None
    attempts: int
    error: str | None
    report: IngestReport | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def describe(self) -> str:
        """One line for people: where the job is, or how it ended."""
        if self.state == "queued":
            return "waiting for a worker" + (
                f" (attempt {self.attempts + 1})" if self.attempts else ""
            )
        if self.state == "running":
            pages = f", {self.pages} pages" if self.pages else ""
            if self.pages and self.pages_done:
                pages = f", page {self.pages_done} of {self.pages}"
            return f"{self.stage} {self.fraction:.0%}{pages}"
        if self.report is not None:
            detail = f": {self.report.reason}" if self.report.reason else ""
            return f"{self.report.status}{detail}"
        return f"failed: {self.error}" if self.error else self.state


def _job(row: JobRow) -> IngestJob:
    report = None
    if row.report:
        fields = json.loads(row.report)
        for key in ("pages_without_text", "tags", "instruction_pages", "ocr_pages"):
            fields[key] = tuple(fields.get(key) or ())
        report = IngestReport(**fields)
    return IngestJob(
        row.id,
        row.collection,
        row.owner,
        row.file_name,
        row.size_bytes,
        row.state,  # type: ignore[arg-type]
        row.stage,
        row.fraction,
        row.pages,
        row.pages_done,
        row.attempts,
        row.error,
        report,
        row.created_at,
        row.started_at,
        row.finished_at,
        row.heartbeat_at,
    )


@dataclass(frozen=True)
class Claim:
    job: IngestJob
    tags: tuple[str, ...] | None
    contracts: bool
    supersedes: str | None = None


class JobBook:
    """The jobs in the database and their staged files (``incoming_dir``, which every
    process running jobs must share with the processes accepting uploads)."""

    def __init__(self, engine: Engine, incoming_dir: Path, heartbeat_s: float = 30.0) -> None:
        self.engine = engine
        self.incoming_dir = incoming_dir
        self.heartbeat_s = heartbeat_s

    def staged(self, job_id: str) -> Path:
        return self.incoming_dir / f"{job_id}.upload"

    def create(
        self,
        upload: Upload,
        collection: str,
        owner: str,
        *,
        tags: Sequence[str] | None = None,
        contracts: bool = False,
    ) -> IngestJob:
        """Stage the file, then queue the job (a crash between the two leaves only a file)."""
        job_id = uuid.uuid4().hex
        self.incoming_dir.mkdir(parents=True, exist_ok=True)
        part = self.staged(job_id).with_suffix(".part")
        part.write_bytes(upload.data)
        part.replace(self.staged(job_id))
        wanted = upload.tags if upload.tags is not None else tags
        row = JobRow(
            id=job_id,
            collection=collection,
            owner=owner,
            file_name=upload.file_name,
            size_bytes=len(upload.data),
            tags=None if wanted is None else json.dumps(list(wanted)),
            contracts=contracts,
            supersedes=upload.supersedes,
            state="queued",
            stage="waiting",
            fraction=0.0,
            attempts=0,
            created_at=utc_now(),
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            return _job(row)

    def get(self, job_id: str) -> IngestJob:
        with Session(self.engine) as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"No ingestion job with id {job_id}.")
            return _job(row)

    def recent(
        self, *, owner: str | None = None, active_only: bool = False, limit: int = 50
    ) -> list[IngestJob]:
        """Newest first."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id).limit(limit)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        if active_only:
            query = query.where(JobRow.state.in_(ACTIVE))
        with Session(self.engine) as session:
            return [_job(row) for row in session.scalars(query)]

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            found = session.execute(select(JobRow.state, func.count()).group_by(JobRow.state))
            counts = {state: 0 for state in ("queued", "running", "done", "failed")}
            counts.update({state: int(n) for state, n in found})
            return counts

    def claim(self, job_id: str, worker: str, max_attempts: int) -> Claim | None:
        """Take the job to run it: queued, or running with a dead worker (no heartbeat for
        ``heartbeat_s``). None when it is done, failed, running alive elsewhere, or out of
        attempts (then it is marked failed)."""
        now = utc_now()
        stale = now - timedelta(seconds=self.heartbeat_s)
        claimable = (JobRow.state == "queued") | (
            (JobRow.state == "running") & (JobRow.heartbeat_at < stale)
        )
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(JobRow)
                .where(JobRow.id == job_id, claimable)
                .values(
                    state="running",
                    attempts=JobRow.attempts + 1,
                    worker=worker,
                    heartbeat_at=now,
                    started_at=func.coalesce(JobRow.started_at, now),
                    stage="starting",
                    fraction=0.0,
                )
            ).rowcount
        if not taken:
            return None
        with Session(self.engine) as session:
            row = session.get(JobRow, job_id)
            assert row is not None
            job, tags, contracts, supersedes = _job(row), row.tags, row.contracts, row.supersedes
        if job.attempts > max_attempts:
            self.fail(job_id, f"gave up after {max_attempts} attempts ({job.error or 'no error'})")
            return None
        wanted = None if tags is None else tuple(json.loads(tags))
        return Claim(job, wanted, contracts, supersedes)

    def _set(self, job_id: str, **values: object) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(JobRow).where(JobRow.id == job_id).values(**values))

    def progress(
        self,
        job_id: str,
        stage: str,
        fraction: float,
        pages: int | None,
        pages_done: int | None = None,
    ) -> None:
        values: dict[str, object] = dict(stage=stage, fraction=fraction, heartbeat_at=utc_now())
        if pages is not None:
            values["pages"] = pages
        if pages_done is not None:
            values["pages_done"] = pages_done
        self._set(job_id, **values)

    def beat(self, job_id: str) -> None:
        self._set(job_id, heartbeat_at=utc_now())

    def finish(self, job_id: str, report: IngestReport) -> None:
        """The job ran to its end; a file the pipeline refused is a failed job with the
        pipeline's reason, and is not retried (it would fail the same way)."""
        state = "failed" if report.status == "failed" else "done"
        self._set(
            job_id,
            state=state,
            stage="done",
            fraction=1.0,
            pages=report.pages or None,
            pages_done=report.pages or None,
            report=json.dumps(asdict(report)),
            error=report.reason if state == "failed" else None,
            finished_at=utc_now(),
        )
        self.staged(job_id).unlink(missing_ok=True)

    def fail(self, job_id: str, error: str, *, final: bool = True) -> None:
        """An attempt broke; ``final``: no more attempts (the staged file goes)."""
        if final:
            self._set(job_id, state="failed", error=error, finished_at=utc_now())
            self.staged(job_id).unlink(missing_ok=True)
            metrics.INGEST_JOB_FAILURES.inc()
        else:
            self._set(job_id, state="queued", stage="waiting", error=error)

    def resumable(self) -> list[str]:
        """Jobs to hand to a runner that starts: queued ones, and running ones whose worker
        stopped sending heartbeats."""
        stale = utc_now() - timedelta(seconds=self.heartbeat_s)
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(JobRow.id)
                    .where(
                        (JobRow.state == "queued")
                        | ((JobRow.state == "running") & (JobRow.heartbeat_at < stale))
                    )
                    .order_by(JobRow.created_at)
                )
            )


class JobError(RuntimeError):
    """An attempt of a job broke; the runner retries it while attempts remain."""


@contextmanager
def _heartbeat(book: JobBook, job_id: str) -> Iterator[None]:
    """Keep the job's heartbeat fresh while it runs (long pages read without progress)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(max(0.5, book.heartbeat_s / 3)):
            try:
                book.beat(job_id)
            except Exception:  # noqa: BLE001 - the next beat may succeed
                log.warning("job heartbeat failed", exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_job(desk: Desk, job_id: str, worker: str = "") -> IngestJob:
    """Run one attempt of the job, if it is claimable; raises JobError when the attempt broke
    and another may follow. Returns the job as it stands afterwards."""
    book = desk.jobs
    max_attempts = desk.settings.job_retries + 1
    claim = book.claim(job_id, worker, max_attempts)
    if claim is None:
        return book.get(job_id)
    job = claim.job
    if job.attempts > 1:  # an earlier attempt died: undo what it never committed
        undone = desk.store.discard_pending(job_id)
        log.warning(
            "job taken over",
            extra={"fields": {"job": job_id, "attempt": job.attempts, "undone": undone}},
        )
    last: dict[str, float | str] = {"at": 0.0, "stage": ""}

    def progress(event: IngestProgress) -> None:
        now = time.monotonic()
        if event.stage == last["stage"] and now - float(last["at"]) < PROGRESS_EVERY_S:
            return
        last.update(at=now, stage=event.stage)
        book.progress(job_id, event.stage, event.fraction, event.pages, event.pages_done)

    try:
        with _heartbeat(book, job_id):
            data = book.staged(job_id).read_bytes()
            upload = Upload(job.file_name, data, claim.tags, claim.supersedes)
            [report] = desk.ingest(
                [upload],
                job.collection,
                progress,
                contracts=claim.contracts,
                prepare_search=True,
                writer=job_id,
            )
    except Exception as exc:  # noqa: BLE001 - recorded on the job, then retried or final
        final = job.attempts >= max_attempts
        desk.store.discard_pending(job_id)
        reason = f"{type(exc).__name__}: {exc}"
        book.fail(job_id, reason, final=final)
        log.exception("job attempt failed", extra={"fields": {"job": job_id, "final": final}})
        if not final:
            raise JobError(reason) from exc
        return book.get(job_id)
    book.finish(job_id, report)
    return book.get(job_id)
