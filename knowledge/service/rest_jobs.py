"""``/api/jobs``: the caller's ingestion jobs (an upload through the API is one), their
progress and report. Another user's job is "not found"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from knowledge.core.errors import NotFoundError
from knowledge.desk.jobs import IngestJob
from knowledge.service.auth import Reader
from knowledge.service.rest_models import Job, Jobs, errors

router = APIRouter(prefix="/jobs")


def job_json(job: IngestJob) -> dict[str, Any]:
    r = job.report
    report = None
    if r is not None:
        report = {
            "status": r.status,
            "doc_id": r.doc_id,
            "pages": r.pages,
            "chunks": r.chunks,
            "reason": r.reason,
            "tags": list(r.tags),
            "supersedes": r.supersedes,
            "proposed_supersedes": r.proposed_supersedes,
        }
    return {
        "job_id": job.job_id,
        "collection": job.collection,
        "file_name": job.file_name,
        "size_bytes": job.size_bytes,
        "state": job.state,
        "stage": job.stage,
        "fraction": job.fraction,
        "pages": job.pages,
        "pages_done": job.pages_done,
        "attempts": job.attempts,
        "status": job.describe(),
        "error": job.error,
        "report": report,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


@router.get(
    "",
    summary="Your ingestion jobs, newest first",
    response_model=Jobs,
    responses=errors(),
)
def jobs(
    caller: Reader, limit: Annotated[int, Query(ge=1, le=200, description="how many")] = 20
) -> dict[str, Any]:
    return {"jobs": [job_json(j) for j in caller.me.jobs(limit)]}


@router.get(
    "/{job_id}",
    summary="One of your ingestion jobs: its progress, then its report",
    response_model=Job,
    responses=errors(404),
)
def job(job_id: str, caller: Reader) -> dict[str, Any]:
    found = caller.me.desk.jobs.get(job_id)
    if found.owner != caller.me.user:
        raise NotFoundError(f"No ingestion job with id {job_id}.")
    return job_json(found)
