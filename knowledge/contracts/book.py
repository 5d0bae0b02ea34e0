"""Contract intelligence: clause records extracted from contract PDFs, their review, queries
across contracts and export. The records live in the project database beside the documents."""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ingest.clauses.extract import CATEGORIES, ClauseCandidate, ClauseScorer, extract_clauses
from ingest.clauses.model import ClauseModel
from ingest.clauses.rules import looks_like_contract
from ingest.document import Page
from knowledge.contracts.tables import ClauseReviewRow, ClauseRow, ContractRow
from knowledge.core.errors import KdeskError, NotFoundError, SettingsError
from knowledge.core.exports import csv_bytes, xlsx_bytes
from knowledge.search.schema import DocumentRow

MODEL_PATH = Path(__file__).resolve().parent / "clauses.npz"

_model_lock = threading.Lock()
_models: dict[Path, ClauseModel] = {}


def load_clause_model(path: Path = MODEL_PATH) -> ClauseModel:
    """The trained clause model shipped with the package (loaded once; never downloaded)."""
    with _model_lock:
        if path not in _models:
            if not path.is_file():
                raise SettingsError(
                    f"No clause model at {path}: build it with `kdesk clauses train DATASET_DIR`."
                )
            _models[path] = ClauseModel.load(path)
        return _models[path]


# --- records --------------------------------------------------------------------------------

ClauseStatus = Literal["extracted", "confirmed", "corrected", "rejected"]
ReviewAction = Literal["confirm", "correct", "reject", "reopen"]
STATUSES: tuple[ClauseStatus, ...] = ("extracted", "confirmed", "corrected", "rejected")
_STATUS_AFTER: dict[str, ClauseStatus] = {
    "confirm": "confirmed",
    "correct": "corrected",
    "reject": "rejected",
    "reopen": "extracted",
}
CONTRACT_WORD = re.compile(r"contract", re.IGNORECASE)


@dataclass(frozen=True)
class ClauseRecord:
    id: str
    doc_id: str
    collection: str
    file_name: str
    title: str
    category: str
    text: str
    page: int
    value: str | None  # the reviewed value where corrected, else the extracted one
    extracted_value: str | None
    confidence: float
    status: ClauseStatus
    reviewer: str | None
    reviewed_at: datetime | None
    note: str | None


@dataclass(frozen=True)
class ReviewEvent:
    action: str
    value: str | None
    note: str | None
    reviewer: str
    at: datetime


@dataclass(frozen=True)
class ContractInfo:
    doc_id: str
    collection: str
    file_name: str
    title: str
    pages: int
    clauses: int
    reviewed: int
    detected_by: str
    extracted_at: datetime


@dataclass(frozen=True)
class ClauseFilter:
    collections: Sequence[str] | None = None
    doc_ids: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    value_contains: str = ""  # case-insensitive, on the (reviewed) value
    text_contains: str = ""  # case-insensitive, on the clause text


def _record(row: ClauseRow, doc: DocumentRow) -> ClauseRecord:
    return ClauseRecord(
        id=row.id,
        doc_id=row.doc_id,
        collection=doc.collection,
        file_name=doc.file_name,
        title=doc.title,
        category=row.category,
        text=row.text,
        page=row.page,
        value=row.reviewed_value if row.status == "corrected" else row.value,
        extracted_value=row.value,
        confidence=row.confidence,
        status=row.status,  # type: ignore[arg-type]
        reviewer=row.reviewer,
        reviewed_at=row.reviewed_at,
        note=row.note,
    )


def text_hash(category: str, text: str) -> str:
    """What identifies a clause across re-extractions: its category and its words."""
    words = " ".join(text.split()).lower()
    return hashlib.sha256(f"{category}\n{words}".encode()).hexdigest()


def is_contract_collection(name: str) -> bool:
    return bool(CONTRACT_WORD.search(name))


class ContractBook:
    """Clause records per contract document: extraction results, reviews, queries, export."""

    def __init__(self, engine: Engine, model: Callable[[], ClauseScorer] | None = None) -> None:
        self.engine = engine
        self._model: Callable[[], ClauseScorer] = model or load_clause_model

    # Extraction ------------------------------------------------------------------------------

    def extract(self, doc_id: str, pages: Sequence[Page], detected_by: str) -> int:
        """Extract and store the clauses of a document; reviews of unchanged clauses are kept."""
        model = self._model()
        started = time.perf_counter()
        candidates = extract_clauses(pages, model)
        seconds = time.perf_counter() - started
        info = getattr(model, "info", {}) or {}
        name = f"clauses-npz ({info.get('contracts', '?')} training contracts)"
        self._replace(doc_id, candidates, detected_by, name, len(pages), seconds)
        return len(candidates)

    def _replace(
        self,
        doc_id: str,
        candidates: Sequence[ClauseCandidate],
        detected_by: str,
        model_name: str,
        pages: int,
        seconds: float,
    ) -> None:
        with Session(self.engine) as session, session.begin():
            old = {
                row.text_hash: row
                for row in session.scalars(select(ClauseRow).where(ClauseRow.doc_id == doc_id))
            }
            kept: set[str] = set()
            for c in candidates:
                key = text_hash(c.category, c.text)
                if key in kept:
                    continue
                kept.add(key)
                row = old.get(key)
                if row is None:
                    session.add(_new_row(doc_id, key, c))
                else:  # the same clause again: keep its review, refresh where it is
                    row.page, row.char_start, row.char_end = c.page, c.start, c.end
                    row.value, row.confidence = c.value, c.confidence
            for key, row in old.items():
                if key not in kept:
                    session.delete(row)
            session.merge(
                ContractRow(
                    doc_id=doc_id,
                    detected_by=detected_by,
                    model=model_name,
                    pages=pages,
                    seconds=round(seconds, 3),
                    extracted_at=datetime.now(UTC),
                )
            )

    def reason(
        self,
        doc_id: str,
        collection: str,
        pages: Sequence[Page],
        requested: bool,
        detect: bool = True,
    ) -> str | None:
        """Why a document is treated as a contract, or None when it is not one."""
        if requested:
            return "upload"
        if is_contract_collection(collection):
            return "collection"
        with Session(self.engine) as session:
            known = session.get(ContractRow, doc_id)
            if known is not None:
                return known.detected_by
        if detect and looks_like_contract([p.text for p in pages]):
            return "detector"
        return None

    def is_contract(self, doc_id: str) -> bool:
        with Session(self.engine) as session:
            return session.get(ContractRow, doc_id) is not None

    # Queries ---------------------------------------------------------------------------------

    def contracts(self, collections: Sequence[str] | None = None) -> list[ContractInfo]:
        query = (
            select(ContractRow, DocumentRow)
            .join(DocumentRow, DocumentRow.doc_id == ContractRow.doc_id)
            .order_by(DocumentRow.collection, DocumentRow.file_name)
        )
        if collections is not None:
            query = query.where(DocumentRow.collection.in_(list(collections)))
        with Session(self.engine) as session:
            counts = dict(
                session.execute(
                    select(ClauseRow.doc_id, func.count()).group_by(ClauseRow.doc_id)
                ).all()
            )
            reviewed = dict(
                session.execute(
                    select(ClauseRow.doc_id, func.count())
                    .where(ClauseRow.status != "extracted")
                    .group_by(ClauseRow.doc_id)
                ).all()
            )
            return [
                ContractInfo(
                    doc_id=c.doc_id,
                    collection=d.collection,
                    file_name=d.file_name,
                    title=d.title,
                    pages=d.pages,
                    clauses=int(counts.get(c.doc_id, 0)),
                    reviewed=int(reviewed.get(c.doc_id, 0)),
                    detected_by=c.detected_by,
                    extracted_at=c.extracted_at,
                )
                for c, d in session.execute(query).all()
            ]

    def records(self, where: ClauseFilter | None = None) -> list[ClauseRecord]:
        where = where or ClauseFilter()
        query = select(ClauseRow, DocumentRow).join(
            DocumentRow, DocumentRow.doc_id == ClauseRow.doc_id
        )
        if where.collections is not None:
            query = query.where(DocumentRow.collection.in_(list(where.collections)))
        if where.doc_ids is not None:
            query = query.where(ClauseRow.doc_id.in_(list(where.doc_ids)))
        if where.categories:
            query = query.where(ClauseRow.category.in_(list(where.categories)))
        if where.statuses:
            query = query.where(ClauseRow.status.in_(list(where.statuses)))
        with Session(self.engine) as session:
            found = [_record(row, doc) for row, doc in session.execute(query).all()]
        value, text = where.value_contains.strip().lower(), where.text_contains.strip().lower()
        found = [
            r
            for r in found
            if (not value or value in (r.value or "").lower())
            and (not text or text in r.text.lower())
        ]
        order = {name: n for n, name in enumerate(CATEGORIES)}
        return sorted(
            found, key=lambda r: (r.collection, r.file_name, order.get(r.category, 99), r.page)
        )

    def record(self, clause_id: str) -> ClauseRecord:
        with Session(self.engine) as session:
            row = session.get(ClauseRow, clause_id)
            if row is None:
                raise NotFoundError(f"No clause with id {clause_id}.")
            doc = session.get(DocumentRow, row.doc_id)
            assert doc is not None  # a clause row never outlives its document (foreign key)
            return _record(row, doc)

    # Review ----------------------------------------------------------------------------------

    def review(
        self,
        clause_id: str,
        action: ReviewAction,
        reviewer: str,
        *,
        value: str | None = None,
        note: str | None = None,
    ) -> ClauseRecord:
        """Confirm, correct (with the right value), reject or reopen a clause, as ``reviewer``."""
        reviewer = " ".join(reviewer.split())
        if not reviewer:
            raise KdeskError("Say who is reviewing (a name or e-mail).")
        if action not in _STATUS_AFTER:
            raise KdeskError(f"Unknown review action {action!r}.")
        if action == "correct" and not (value or "").strip():
            raise KdeskError("A correction needs the corrected value.")
        now = datetime.now(UTC)
        with Session(self.engine) as session, session.begin():
            row = session.get(ClauseRow, clause_id)
            if row is None:
                raise NotFoundError(f"No clause with id {clause_id}.")
            row.status = _STATUS_AFTER[action]
            row.reviewed_value = value.strip() if action == "correct" and value else None
            row.reviewer, row.reviewed_at = reviewer, now
            row.note = note.strip() if note and note.strip() else row.note
            session.add(
                ClauseReviewRow(
                    clause_id=clause_id,
                    action=action,
                    value=row.reviewed_value,
                    note=note,
                    reviewer=reviewer,
                    at=now,
                )
            )
        return self.record(clause_id)

    def history(self, clause_id: str) -> list[ReviewEvent]:
        with Session(self.engine) as session:
            rows = session.scalars(
                select(ClauseReviewRow)
                .where(ClauseReviewRow.clause_id == clause_id)
                .order_by(ClauseReviewRow.id)
            )
            return [ReviewEvent(r.action, r.value, r.note, r.reviewer, r.at) for r in rows]


def _new_row(doc_id: str, key: str, c: ClauseCandidate) -> ClauseRow:
    return ClauseRow(
        id=uuid.uuid4().hex,
        doc_id=doc_id,
        category=c.category,
        text=c.text,
        text_hash=key,
        page=c.page,
        char_start=c.start,
        char_end=c.end,
        value=c.value,
        confidence=c.confidence,
        status="extracted",
    )


# --- export ---------------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "collection", "file", "category", "value", "page", "status", "confidence", "text",
    "extracted value", "reviewer", "reviewed at", "note",
)  # fmt: skip


def export_rows(records: Sequence[ClauseRecord]) -> list[dict[str, object]]:
    return [
        {
            "collection": r.collection,
            "file": r.file_name,
            "category": r.category,
            "value": r.value or "",
            "page": r.page,
            "status": r.status,
            "confidence": r.confidence,
            "text": r.text,
            "extracted value": r.extracted_value or "",
            "reviewer": r.reviewer or "",
            "reviewed at": r.reviewed_at.strftime("%Y-%m-%d %H:%M:%S UTC") if r.reviewed_at else "",
            "note": r.note or "",
        }
        for r in records
    ]


def export_csv(records: Sequence[ClauseRecord]) -> bytes:
    return csv_bytes(export_rows(records), EXPORT_COLUMNS, bom=True)  # Excel reads UTF-8 then


def export_xlsx(records: Sequence[ClauseRecord]) -> bytes:
    widths = {"collection": 16, "file": 40, "category": 28, "value": 24, "text": 90}
    rows = export_rows(records)
    return xlsx_bytes(rows, EXPORT_COLUMNS, sheet="Clauses", widths=widths, wrap=("text",))


# --- at a glance ----------------------------------------------------------------------------

OVERVIEW_CATEGORIES = (
    "Parties", "Agreement Date", "Expiration Date", "Renewal Term", "Governing Law",
)  # fmt: skip


def contract_overview(
    contracts: Sequence[ContractInfo],
    records: Sequence[ClauseRecord],
    categories: Sequence[str] = OVERVIEW_CATEGORIES,
) -> list[dict[str, object]]:
    """One row per contract: its key values (rejected clauses left out) and review progress."""
    rows = []
    for c in contracts:
        mine = [r for r in records if r.doc_id == c.doc_id and r.status != "rejected"]
        values = {
            name: "; ".join(
                dict.fromkeys(r.value or r.text[:60] for r in mine if r.category == name)
            )
            for name in categories
        }
        rows.append(
            {
                "contract": c.title,
                "file": c.file_name,
                "pages": c.pages,
                **values,
                "clauses": c.clauses,
                "reviewed": c.reviewed,
            }
        )
    return rows
