"""Folder sync (`kdesk sync`): a folder of documents (a mounted share) mirrored into a collection,
incrementally. Documents are matched by file name (the store's key in a collection): a file
whose name is new, or whose bytes' sha256 differs from the stored document's, is ingested as a
job; an unchanged one is skipped by its hash (read once, to hash it, never parsed); a stored
document whose name is no longer in the folder is "missing", and deleted only when asked.

``plan_sync`` decides without changing anything; ``run_sync`` carries a plan out. A run holds
``sync_lock`` on the collection so that two runs (cron, a systemd timer) never overlap.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.desk.ingestion import Upload, documents_under
from knowledge.search.store import validate_collection_name
from knowledge.usage.events import os_user

if TYPE_CHECKING:
    from knowledge.desk.jobs import IngestJob
    from knowledge.desk.root import Desk

Action = Literal["add", "replace", "unchanged", "duplicate", "missing", "failed"]
OUTCOMES = ("added", "replaced", "unchanged", "deleted", "missing", "failed", "duplicate")
Waiter = Callable[[list["IngestJob"]], list["IngestJob"]]
POLL_S = 0.1


class SyncBusy(KdeskError):
    """Another sync of the same collection holds the lock."""


@dataclass(frozen=True)
class SyncItem:
    file_name: str
    action: Action
    path: str | None = None  # the file in the folder (None: a stored document only)
    sha256: str | None = None  # of the file's bytes
    doc_id: str | None = None  # the stored document of this name (or, duplicate: the copy)
    reason: str | None = None


@dataclass(frozen=True)
class SyncPlan:
    folder: Path
    collection: str
    items: list[SyncItem]


@dataclass(frozen=True)
class SyncOutcome:
    file_name: str
    outcome: str  # one of OUTCOMES
    path: str | None = None
    doc_id: str | None = None
    job_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SyncResult:
    folder: str
    collection: str
    files: list[SyncOutcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        seen = Counter(f.outcome for f in self.files)
        return {name: seen.get(name, 0) for name in OUTCOMES}

    @property
    def failed(self) -> bool:
        return any(f.outcome == "failed" for f in self.files)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts.items())
        return f"sync {self.folder} -> {self.collection}: {counts}"


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def plan_sync(desk: Desk, folder: str | Path, collection: str) -> SyncPlan:
    """What a sync of ``folder`` into ``collection`` would do, file by file (nothing changed).

    A second file of a name already seen (in another subfolder) fails: a collection holds one
    document per file name. A new name whose bytes equal a document that stays (its name is
    still in the folder) is a duplicate, and not ingested again at every run."""
    root = Path(folder)
    if not root.exists():
        raise KdeskError(f"No such folder: {root}")
    if not root.is_dir():
        raise KdeskError(f"Not a folder: {root} (sync mirrors a folder of documents)")
    target = validate_collection_name(collection)
    stored = {d.file_name: d for d in desk.store.documents([target])}
    files: dict[str, Path] = {}
    items: list[SyncItem] = []
    for path in documents_under([root]):
        if not path.is_file():
            continue
        if path.name in files:
            reason = f"another file of this name is synced: {files[path.name]}"
            items.append(SyncItem(path.name, "failed", str(path), reason=reason))
            continue
        files[path.name] = path
    kept = {d.sha256: d for name, d in stored.items() if name in files}
    for name, path in files.items():
        try:
            digest = file_sha256(path)
        except OSError as exc:
            reason = f"cannot read {path}: {exc.strerror or exc}"
            items.append(SyncItem(name, "failed", str(path), reason=reason))
            continue
        existing = stored.get(name)
        if existing is not None:
            action: Action = "unchanged" if existing.sha256 == digest else "replace"
            items.append(SyncItem(name, action, str(path), digest, existing.doc_id))
        elif (copy := kept.get(digest)) is not None:
            reason = f"the same file as {copy.file_name}"
            items.append(SyncItem(name, "duplicate", str(path), digest, copy.doc_id, reason))
        else:
            items.append(SyncItem(name, "add", str(path), digest))
    for name, doc in stored.items():
        if name not in files:
            items.append(SyncItem(name, "missing", doc_id=doc.doc_id))
    items.sort(key=lambda item: (item.file_name, item.path or ""))
    return SyncPlan(root, target, items)


def lock_path(desk: Desk, collection: str) -> Path:
    key = hashlib.sha256(collection.encode("utf-8")).hexdigest()[:16]
    return desk.settings.data_dir / f"sync-{key}.lock"


@contextmanager
def sync_lock(desk: Desk, collection: str) -> Iterator[Path]:
    """Hold the collection's sync lock (non-blocking): SyncBusy when another run has it."""
    path = lock_path(desk, validate_collection_name(collection))
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SyncBusy(
                f"Another sync of collection {collection!r} is running (lock {path}); "
                "this run does nothing."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing releases the lock


def wait_ended(desk: Desk, jobs: list[IngestJob]) -> list[IngestJob]:
    """The jobs once each has ended, in their order (the CLI passes its own, with progress)."""
    ended: list[IngestJob] = []
    for job in jobs:
        while (current := desk.jobs.get(job.job_id)).active:
            time.sleep(POLL_S)
        ended.append(current)
    return ended


def run_sync(
    desk: Desk,
    plan: SyncPlan,
    *,
    delete: bool = False,
    owner: str | None = None,
    wait: Waiter | None = None,
) -> SyncResult:
    """Carry ``plan`` out: delete the missing documents (only with ``delete``; first, so that
    a file copied from a deleted one is ingested, not taken for its duplicate), ingest the new
    and changed files as jobs of ``owner`` (default "sync:<os user>"), one file read at a time,
    and wait for them. A folder without any document deletes nothing (KdeskError)."""
    owner = owner or f"sync:{os_user()}"
    missing = [item for item in plan.items if item.action == "missing"]
    if delete and missing and all(item.path is None for item in plan.items):
        raise KdeskError(  # an unmounted share looks like an empty folder
            f"{plan.folder} holds no documents (is the share mounted?): nothing is deleted "
            f"from {plan.collection}."
        )
    outcomes: dict[int, SyncOutcome] = {}
    for n, item in enumerate(plan.items):
        if item.action == "missing" and delete and item.doc_id:
            with suppress(NotFoundError):  # deleted meanwhile (in the app): as good
                desk.store.delete_document(item.doc_id)
            outcomes[n] = SyncOutcome(item.file_name, "deleted", doc_id=item.doc_id)
        elif item.action in ("missing", "unchanged", "failed", "duplicate"):
            outcomes[n] = SyncOutcome(
                item.file_name, item.action, item.path, item.doc_id, reason=item.reason
            )
    submitted: list[tuple[int, IngestJob]] = []
    for n, item in enumerate(plan.items):
        if item.action not in ("add", "replace") or item.path is None:
            continue
        [read] = desk.read_files([Path(item.path)], plan.collection)
        if not isinstance(read, Upload):
            outcomes[n] = SyncOutcome(item.file_name, "failed", item.path, reason=read.reason)
            continue
        [job] = desk.submit([read], plan.collection, owner=owner)
        submitted.append((n, job))
    ended = (wait or (lambda jobs: wait_ended(desk, jobs)))([job for _, job in submitted])
    for (n, _), job in zip(submitted, ended, strict=True):
        item = plan.items[n]
        report = job.report
        status = report.status if report is not None else "failed"
        reason = report.reason if report is not None else job.error or job.state
        doc_id = report.doc_id if report is not None else item.doc_id
        outcomes[n] = SyncOutcome(item.file_name, status, item.path, doc_id, job.job_id, reason)
    return SyncResult(str(plan.folder), plan.collection, [outcomes[n] for n in sorted(outcomes)])


def sync_folder(
    desk: Desk,
    folder: str | Path,
    collection: str,
    *,
    delete: bool = False,
    owner: str | None = None,
    wait: Waiter | None = None,
) -> SyncResult:
    """Plan and run a sync under the collection's lock (SyncBusy when another run holds it)."""
    with sync_lock(desk, collection):
        plan = plan_sync(desk, folder, collection)
        return run_sync(desk, plan, delete=delete, owner=owner, wait=wait)


def outcomes_json(result: SyncResult) -> dict[str, object]:
    return {
        "folder": result.folder,
        "collection": result.collection,
        "counts": result.counts,
        "files": [vars(f) for f in result.files],
    }
