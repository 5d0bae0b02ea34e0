"""Document versions as one signed-in user may see and change them: chains and what changed
of documents they may read; linking versions where they may upload (audited); the proposals
their own uploads made (knowledge.search.versions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from knowledge.core.errors import NotFoundError, PermissionDeniedError
from knowledge.core.types import DocumentInfo
from knowledge.search.changes import SectionChange

if TYPE_CHECKING:
    from knowledge.desk.facade import UserDesk


@dataclass(frozen=True)
class Proposal:
    """An upload that looks like a new version of a current document."""

    document: DocumentInfo
    earlier: DocumentInfo


class UserVersions:
    def __init__(self, me: UserDesk) -> None:
        self.me = me
        self.book = me.desk.versions

    def chain(self, doc_id: str) -> list[DocumentInfo]:
        """The versions of a document the user may read, oldest first."""
        self.me.document(doc_id)
        return self.book.chain(doc_id)

    def changes(self, earlier_id: str, later_id: str) -> list[SectionChange]:
        self.me.document(earlier_id)
        self.me.document(later_id)
        return self.book.changes(earlier_id, later_id)

    def supersede(self, doc_id: str, earlier_id: str) -> DocumentInfo:
        """Make ``doc_id`` the new version of ``earlier_id`` (KdeskError on a broken rule)."""
        doc = self._changeable(doc_id)
        earlier = self.me.document(earlier_id)
        changed = self.book.supersede(doc_id, earlier_id)
        self.me._audit(
            "document_versioned",
            f"{doc.collection}/{doc.file_name}",
            doc_id=doc_id,
            supersedes=earlier.doc_id,
        )
        return changed

    def clear(self, doc_id: str) -> DocumentInfo:
        doc = self._changeable(doc_id)
        changed = self.book.clear(doc_id)
        self.me._audit(
            "document_versioned", f"{doc.collection}/{doc.file_name}", doc_id=doc_id, supersedes=""
        )
        return changed

    def _changeable(self, doc_id: str) -> DocumentInfo:
        doc = self.me.document(doc_id)
        if not self.me.may_upload(doc.collection):
            self.me._audit("permission_denied", f"version:{doc_id}", outcome="denied")
            raise PermissionDeniedError("You may not change documents in this collection.")
        return doc

    def proposals(self) -> list[Proposal]:
        """The user's recent uploads still waiting for a confirmation that they are a new
        version (a link made since, or a document deleted, ends the proposal)."""
        found: dict[str, Proposal] = {}
        for job in self.me.jobs():
            report = job.report
            if report is None or not report.doc_id or not report.proposed_supersedes:
                continue
            if report.doc_id in found or not self.me.may_upload(job.collection):
                continue
            try:
                doc = self.me.document(report.doc_id)
                earlier = self.book.proposal(doc.doc_id)
            except NotFoundError:  # deleted since: no proposal
                continue
            if earlier is not None and earlier.doc_id == report.proposed_supersedes:
                found[doc.doc_id] = Proposal(doc, earlier)
        return list(found.values())
