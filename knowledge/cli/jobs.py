"""`kdesk ingest`, `kdesk jobs`, `kdesk worker`: files become ingestion jobs (knowledge.desk.jobs),
run by `kdesk worker` processes on Redis or, without Redis, by this process."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from knowledge.cli import common
from knowledge.core.errors import KdeskError

if TYPE_CHECKING:
    from knowledge.core.types import IngestReport
    from knowledge.desk.jobs import IngestJob
    from knowledge.desk.root import Desk

POLL_S = 0.25
WORKER_HINT_AFTER_S = 15.0


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.reader import supported_list
    from knowledge.desk.ingestion import Upload, documents_under

    desk = common.open_desk()
    files = documents_under(args.paths)
    if not files:
        raise KdeskError(f"No documents ({supported_list()}) found in the given paths.")
    items = desk.read_files(files, args.collection)
    uploads = [item for item in items if isinstance(item, Upload)]
    if args.supersedes:
        if len(files) != 1:
            raise KdeskError("--supersedes takes one file: the new version.")
        uploads = [replace(u, supersedes=args.supersedes) for u in uploads]
    owner = f"cli:{getpass.getuser()}"
    jobs = desk.submit(uploads, args.collection, owner=owner, tags=args.tag)
    if args.no_wait:
        if args.json:
            common.print_json({"jobs": [_job_json(j) for j in jobs]})
        else:
            for job in jobs:
                print(f"queued    {job.file_name} (job {job.job_id})")
        return 0
    try:
        finished = iter(wait_jobs(desk, jobs, quiet=args.json))
    finally:
        desk.close()
    reports = [
        item if not isinstance(item, Upload) else job_report(next(finished)) for item in items
    ]
    if args.json:
        common.print_json({"reports": [asdict(r) for r in reports]})
    else:
        for r in reports:
            detail = f"{r.pages} pages, {r.chunks} chunks, {r.seconds:.1f}s"
            note = f" — {r.reason}" if r.reason else ""
            print(f"{r.status:9} {r.file_name} ({detail}){note}")
    return 1 if any(r.status == "failed" for r in reports) else 0


def job_report(job: IngestJob) -> IngestReport:
    from knowledge.core.types import IngestReport

    if job.report is not None:
        return job.report
    return IngestReport(job.file_name, job.collection, "failed", reason=job.error or job.state)


def wait_jobs(desk: Desk, jobs: list[IngestJob], *, quiet: bool) -> list[IngestJob]:
    """The jobs once each has ended, in their order; progress on stderr."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), unit="file", file=sys.stderr, disable=quiet)
    pending = {job.job_id: job for job in jobs}
    done: dict[str, IngestJob] = {}
    started = time.monotonic()
    hinted = False
    while pending:
        for job_id in list(pending):
            job = desk.jobs.get(job_id)
            if not job.active:
                del pending[job_id]
                done[job_id] = job
                bar.update(1)
            elif job.state == "running":
                bar.set_description(f"{job.file_name[:30]}: {job.describe()}")
        waited = time.monotonic() - started
        hint = pending and not hinted and desk.settings.redis_url and waited > WORKER_HINT_AFTER_S
        if hint and all(desk.jobs.get(j).state == "queued" for j in pending):
            print("Still queued: is a `kdesk worker` running?", file=sys.stderr)
            hinted = True
        if pending:
            time.sleep(POLL_S)
    bar.close()
    return [done[job.job_id] for job in jobs]


def _job_json(job: IngestJob) -> dict[str, object]:
    data = asdict(job)
    data["summary"] = job.describe()
    return data


def cmd_jobs(args: argparse.Namespace) -> int:
    desk = common.open_desk()
    jobs = desk.jobs.recent(active_only=args.active, limit=args.limit)
    if args.json:
        common.print_json({"jobs": [_job_json(j) for j in jobs], "counts": desk.jobs.counts()})
        return 0
    if not jobs:
        print("No ingestion jobs.")
    for job in jobs:
        when = job.created_at.strftime("%Y-%m-%d %H:%M")
        print(f"{job.job_id[:12]}  {when}  {job.state:8} {job.collection}/{job.file_name}")
        print(f"{'':14}{job.describe()}  (by {job.owner or 'system'}, attempts {job.attempts})")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from knowledge.core.metrics import start_metrics_server
    from knowledge.desk.workers import run_worker

    desk = common.open_desk()
    start_metrics_server(desk.settings.metrics_port, desk.settings.metrics_host)
    run_worker(desk, threads=args.threads)
    return 0


def add_job_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ingest", help="add documents (PDF, DOCX, PPTX, XLSX, CSV, HTML, MD, TXT) or folders"
    )
    p.add_argument("paths", nargs="+")
    p.add_argument("--collection")
    p.add_argument(
        "--tag", action="append", help="repeatable; default: a replaced document keeps its tags"
    )
    p.add_argument(
        "--supersedes",
        metavar="OLDFILE",
        help="the file is the new version of this document (file name or id, same collection)",
    )
    p.add_argument(
        "--no-wait", action="store_true", help="queue the jobs and return (see `kdesk jobs`)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("jobs", help="list ingestion jobs, newest first")
    p.add_argument("--active", action="store_true", help="only queued and running jobs")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("worker", help="run ingestion jobs from Redis (KDESK_REDIS_URL)")
    p.add_argument("--threads", type=int, default=1, help="jobs run at once (default 1)")
    p.set_defaults(func=cmd_worker)
