"""Document versions: a document may supersede an earlier one of its collection, which makes
chains (v1 <- v2 <- current). Search and answers use the current version of each chain unless
the question asks for an earlier one or the caller lets earlier versions in; a new document
whose title matches a current one's (years and version numbers aside) is proposed as its new
version, never linked without being asked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.types import Chunk, DocumentInfo
from knowledge.search.changes import SectionChange, section_changes
from knowledge.search.filters import SearchFilter
from knowledge.search.schema import DocumentRow
from knowledge.search.store import KnowledgeStore

YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
VERSION_MARK = re.compile(
    r"\b(?:v|ver|version|rev|revision|edition|ed|draft|release|r)\.?\s*\d+(?:\.\d+)*\b"
    r"|\b\d+(?:\.\d+)+\b|\b(?:final|updated|new|old|current|latest)\b",
    re.IGNORECASE,
)
NOT_A_WORD = re.compile(r"[\W_]+")
# "previous", "earlier" ... only count next to what a version is called: "prior approval" or
# "leave earlier" do not ask for an old document
EARLIER = r"(?:previous|prior|earlier|older|old|former|original|preceding|superseded|outdated)"
VERSION_NOUN = (
    r"(?:version|versions|edition|revision|release|draft|one|copy|policy|policies|document|"
    r"handbook|manual|guide|agreement|contract|plan|rules|terms|procedure|standard|schedule)"
)
ASKS_EARLIER = re.compile(
    rf"\b{EARLIER}(?:\s+\S+){{0,2}}?\s+{VERSION_NOUN}\b"
    r"|\b(?:last|previous) year'?s\b|\bno longer (?:current|valid|in force)\b"
    r"|\bbefore (?:it|this|the \w+) was (?:updated|changed|revised|replaced)\b",
    re.IGNORECASE,
)


def title_key(text: str) -> str:
    """A title as versions share it: lower-case words without the file extension, years,
    version numbers and words like "final" ("Leave-Policy_2025 v2.pdf" -> "leave policy")."""
    stem = PurePath(text).stem if re.search(r"\.[A-Za-z]{2,4}$", text) else text
    words = VERSION_MARK.sub(" ", YEAR.sub(" ", stem))
    return " ".join(NOT_A_WORD.sub(" ", words).lower().split())


def version_year(doc: DocumentInfo) -> int:
    """The year a version is of: the latest year in its title or file name, else the year it
    was ingested."""
    return _year(doc.title, doc.file_name, doc.ingested_at.year)


def _year(title: str, file_name: str, ingested: int) -> int:
    return max((int(y) for y in YEAR.findall(f"{title} {file_name}")), default=ingested)


def asks_for_earlier(question: str, current_years: Collection[int] = ()) -> bool:
    """Whether a question asks about an earlier version: "the previous policy", "last year's
    handbook", "the 2024 version", or a year older than a current version's."""
    if ASKS_EARLIER.search(question):
        return True
    newest = max(current_years, default=None)
    return newest is not None and any(int(y) < newest for y in YEAR.findall(question))


@dataclass(frozen=True)
class VersionLink:
    """What ingesting a file did about versions: the document it now supersedes, the one it
    looks like a new version of (a proposal to confirm), and notes for its report."""

    supersedes: str | None = None
    proposed: str | None = None
    notes: tuple[str, ...] = ()


class VersionBook:
    """Which document supersedes which, kept in ``documents.supersedes``."""

    def __init__(self, store: KnowledgeStore) -> None:
        self.store = store

    def resolve(self, collection: str, name_or_id: str) -> DocumentInfo:
        """A document of ``collection`` by file name or id."""
        for doc in self.store.documents([collection]):
            if name_or_id in (doc.doc_id, doc.file_name):
                return doc
        raise NotFoundError(f"No document {name_or_id!r} in collection {collection!r}.")

    def supersede(self, doc_id: str, earlier_id: str) -> DocumentInfo:
        """Make ``doc_id`` the new version of ``earlier_id``: same collection, no cycle, and
        an earlier version has at most one newer version."""
        doc, earlier = self.store.document(doc_id), self.store.document(earlier_id)
        if doc_id == earlier_id:
            raise KdeskError(f"{doc.file_name} cannot supersede itself.")
        if doc.collection != earlier.collection:
            raise KdeskError(
                f"{doc.file_name} ({doc.collection}) and {earlier.file_name} "
                f"({earlier.collection}) are in different collections: versions share one."
            )
        successor = self.successor(earlier_id)
        if successor is not None and successor.doc_id != doc_id:
            raise KdeskError(
                f"{earlier.file_name} is already superseded by {successor.file_name}; "
                "a document has one newer version."
            )
        if any(d.doc_id == doc_id for d in self._older(earlier)):
            raise KdeskError(
                f"{doc.file_name} is an earlier version of {earlier.file_name}: "
                "it cannot supersede it."
            )
        return self._set(doc_id, earlier_id)

    def clear(self, doc_id: str) -> DocumentInfo:
        """``doc_id`` no longer supersedes anything (the earlier version is current again)."""
        self.store.document(doc_id)
        return self._set(doc_id, None)

    def _set(self, doc_id: str, earlier_id: str | None) -> DocumentInfo:
        # search resolves versions in SQL at every query, but what was answered from the
        # collection (the answer cache, keyed by its revision) changes: a new revision
        collection = self.store.document(doc_id).collection
        with Session(self.store.engine) as session, session.begin():
            session.execute(
                update(DocumentRow)
                .where(DocumentRow.doc_id == doc_id)
                .values(supersedes=earlier_id)
            )
            self.store._bump(session, collection)
        return self.store.document(doc_id)

    def successor(self, doc_id: str) -> DocumentInfo | None:
        """The document that supersedes ``doc_id`` (None: it is current)."""
        doc = self.store.document(doc_id)
        return next(
            (d for d in self.store.documents([doc.collection]) if d.supersedes == doc_id), None
        )

    def _older(self, doc: DocumentInfo) -> list[DocumentInfo]:
        """``doc``'s earlier versions, newest first."""
        by_id = {d.doc_id: d for d in self.store.documents([doc.collection])}
        older: list[DocumentInfo] = []
        seen = {doc.doc_id}
        while doc.supersedes and doc.supersedes in by_id and doc.supersedes not in seen:
            doc = by_id[doc.supersedes]
            seen.add(doc.doc_id)
            older.append(doc)
        return older

    def chain(self, doc_id: str) -> list[DocumentInfo]:
        """Every version of ``doc_id``'s document, oldest first; the last is current."""
        doc = self.store.document(doc_id)
        by_supersedes = {
            d.supersedes: d for d in self.store.documents([doc.collection]) if d.supersedes
        }
        newer: list[DocumentInfo] = []
        seen = {doc.doc_id}
        head = doc
        while head.doc_id in by_supersedes and by_supersedes[head.doc_id].doc_id not in seen:
            head = by_supersedes[head.doc_id]
            seen.add(head.doc_id)
            newer.append(head)
        return [*reversed(self._older(doc)), doc, *newer]

    def superseded(self, collections: Sequence[str]) -> dict[str, DocumentInfo]:
        """The documents of ``collections`` that a newer version supersedes, by id."""
        documents = self.store.documents(collections)
        earlier = {d.supersedes for d in documents if d.supersedes}
        return {d.doc_id: d for d in documents if d.doc_id in earlier}

    def current(self, collections: Sequence[str]) -> list[DocumentInfo]:
        hidden = self.superseded(collections)
        return [d for d in self.store.documents(collections) if d.doc_id not in hidden]

    def hidden(
        self, collections: Sequence[str], question: str = "", where: SearchFilter | None = None
    ) -> set[str]:
        """The superseded documents a search of ``collections`` leaves out: none when the
        question asks for an earlier version or ``where`` includes them; a document ``where``
        picks by name or id stays in. Asked before every search: one query on the indexed
        ``supersedes`` column, columns only."""
        if (where is not None and where.include_earlier) or not collections:
            return set()
        with Session(self.store.engine) as session:
            newer = session.execute(
                select(
                    DocumentRow.doc_id,
                    DocumentRow.supersedes,
                    DocumentRow.title,
                    DocumentRow.file_name,
                    DocumentRow.ingested_at,
                ).where(
                    DocumentRow.collection.in_(list(collections)),
                    DocumentRow.supersedes.is_not(None),
                )
            ).all()
            if not newer:
                return set()
            earlier = dict(
                session.execute(
                    select(DocumentRow.doc_id, DocumentRow.file_name).where(
                        DocumentRow.doc_id.in_([row.supersedes for row in newer])
                    )
                ).all()
            )
        heads = [row for row in newer if row.doc_id not in earlier]
        years = {_year(row.title, row.file_name, row.ingested_at.year) for row in heads}
        if question and asks_for_earlier(question, years):
            return set()
        picked = set(where.documents) if where is not None else set()
        return {doc_id for doc_id, name in earlier.items() if not {doc_id, name} & picked}

    def proposal(self, doc_id: str) -> DocumentInfo | None:
        """The current document ``doc_id`` looks like a new version of (the same title or
        file name, years and version numbers aside; not of a later year; the newest such), if
        it is not linked."""
        doc = self.store.document(doc_id)
        if doc.supersedes or self.successor(doc_id) is not None:
            return None
        keys = {title_key(doc.title), title_key(doc.file_name)} - {""}
        hidden = self.superseded([doc.collection])
        year = version_year(doc)
        matches = [
            d
            for d in self.store.documents([doc.collection])
            if d.doc_id != doc_id
            and d.doc_id not in hidden
            and keys & {title_key(d.title), title_key(d.file_name)}
            and version_year(d) <= year  # last year's policy uploaded late is no new version
        ]
        return max(matches, key=lambda d: d.ingested_at, default=None)

    def settle(self, doc_id: str, wanted: str | None, *, propose: bool = True) -> VersionLink:
        """After a file is stored: link it to ``wanted`` (an id, from the upload), or else
        (with ``propose``: a new document, not one unchanged or replaced in place) propose the
        document it looks like a new version of. A link that breaks a rule is a note in the
        report; the document stays stored either way."""
        if wanted:  # an id, or a file name of the collection
            try:
                earlier = self.resolve(self.store.document(doc_id).collection, wanted)
                self.supersede(doc_id, earlier.doc_id)
            except KdeskError as exc:
                return VersionLink(notes=(f"not marked as a new version: {exc}",))
            note = f"new version of {earlier.file_name}"
            return VersionLink(supersedes=earlier.doc_id, notes=(note,))
        current = self.store.document(doc_id).supersedes
        if current:
            return VersionLink(supersedes=current)
        proposed = self.proposal(doc_id) if propose else None
        if proposed is None:
            return VersionLink()
        note = f"looks like a new version of {proposed.file_name} (confirm to replace it)"
        return VersionLink(proposed=proposed.doc_id, notes=(note,))

    def changes(self, earlier_id: str, later_id: str) -> list[SectionChange]:
        """The sections that differ between two documents (normally two versions)."""
        return section_changes(self._chunks(earlier_id), self._chunks(later_id))

    def _chunks(self, doc_id: str) -> list[Chunk]:
        doc = self.store.document(doc_id)
        ids = self.store.chunk_ids(doc.collection, [doc_id])
        found = self.store.chunks(ids)
        return [found[i] for i in ids if i in found]
