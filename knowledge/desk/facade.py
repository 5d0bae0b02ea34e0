"""The desk as one signed-in user may use it.

``UserDesk`` is the only way the app (and ``kdesk ... --user``) reaches the knowledge base on
behalf of a person. Its permissions are read from the database, never taken from the caller, and
every read goes through them: searches and answers only retrieve from allowed collections (never
widened by what a caller asks for), document lists, citations' documents, clause records, usage
analytics and their exports are limited to the same collections, feedback is taken on the user's
own answers only, and uploads, deletions and administration check the user's roles. Refusals are
audited. A user without roles gets empty results, not errors that would tell them what exists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING

from knowledge.access.accounts import Account
from knowledge.access.audit import AuditAction
from knowledge.access.ratelimit import RateLimit, RateLimitedError
from knowledge.access.roles import Access, Role
from knowledge.assistant.personas import Persona, Turn
from knowledge.contracts.book import (
    ClauseFilter,
    ClauseRecord,
    ContractInfo,
    ReviewAction,
    ReviewEvent,
)
from knowledge.core.errors import NotFoundError, PermissionDeniedError
from knowledge.core.types import (
    AnswerStream,
    Chunk,
    DocumentInfo,
    IngestReport,
    Requester,
    ScoredChunk,
)
from knowledge.desk.administration import Administration
from knowledge.desk.answer_cache import ask_cached
from knowledge.desk.tooling import tool_box
from knowledge.search.filters import SearchFilter
from knowledge.search.store import validate_collection_name
from knowledge.usage.analytics import Dashboard, build_dashboard, summary
from knowledge.usage.events import Rating, UsageFilter, estimate_tokens

if TYPE_CHECKING:
    from knowledge.desk.api_keys import UserKeys
    from knowledge.desk.conversations import UserConversations
    from knowledge.desk.ingestion import ProgressCallback, Upload
    from knowledge.desk.jobs import IngestJob
    from knowledge.desk.root import Desk
    from knowledge.desk.versions import UserVersions
    from knowledge.tools.chatting import ChatTools

NO_ROLE = "none"


class UserDesk(Administration):
    def __init__(
        self, desk: Desk, user: str, *, role: str | None = None, channel: str = "api"
    ) -> None:
        self.desk = desk
        self.user = user.strip().lower()
        self.channel = channel
        self.access: Access = desk.roles.access(self.user)
        self.role: Role | None = self.access.role(role)
        if role is not None and self.role is None:
            raise PermissionDeniedError(f"{role!r} is not one of your roles.")

    # Who and what ----------------------------------------------------------------------------

    @property
    def requester(self) -> Requester:
        return Requester(self.user, self.role.name if self.role else NO_ROLE, self.channel)

    @property
    def persona(self) -> Persona:
        if self.role is not None:
            return self.role.persona
        s = self.desk.settings
        return Persona(NO_ROLE, temperature=s.temperature, max_tokens=s.max_answer_tokens)

    @property
    def rate_limit(self) -> RateLimit:
        if self.access.roles:
            return self.access.rate_limit
        s = self.desk.settings
        return RateLimit(s.rate_limit_requests, s.rate_limit_tokens, s.rate_limit_window_s)

    def may_open(self, page: str) -> bool:
        return self.access.may_open(page)

    def require(self, page: str) -> None:
        """Raise (and audit) unless one of the user's roles gives ``page``."""
        if not self.access.may_open(page):
            self._audit("permission_denied", f"page:{page}", outcome="denied")
            raise PermissionDeniedError("Your roles do not give access to this.")

    def _audit(self, action: AuditAction, target: str = "", **detail: object) -> None:
        self.desk.audit.record(self.user, action, target, channel=self.channel, **detail)  # type: ignore[arg-type]

    # Collections and documents ---------------------------------------------------------------

    def collections(self) -> list[str]:
        """The existing collections the user may search (others are not even named)."""
        return self.access.searchable(self.desk.store.collection_names())

    def upload_collections(self) -> list[str]:
        return self.access.uploadable(self.desk.store.collection_names())

    def may_upload(self, collection: str) -> bool:
        return self.access.may_upload(collection)

    def searched(self, requested: Sequence[str] | None) -> list[str]:
        """The requested collections the user may search (all of those when None)."""
        allowed = self.collections()
        if requested is None:
            return allowed
        denied = [c for c in requested if c not in allowed]
        if denied:  # recorded, but answered like a search that found nothing there
            self._audit("permission_denied", "collections", outcome="denied", requested=denied)
        return [c for c in dict.fromkeys(requested) if c in allowed]

    def documents(self) -> list[DocumentInfo]:
        return self.desk.store.documents(self.collections())

    def document(self, doc_id: str) -> DocumentInfo:
        """A document the user may read; one they may not is "not found", like a missing one."""
        try:
            info = self.desk.store.document(doc_id)
        except NotFoundError:
            info = None
        if info is None or not self.access.may_search(info.collection):
            if info is not None:
                self._audit("permission_denied", f"document:{doc_id}", outcome="denied")
            raise NotFoundError(f"No document with id {doc_id}.")
        return info

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        """The stored chunks of a document the user may read, in order (for the viewer)."""
        info = self.document(doc_id)
        ids = self.desk.store.chunk_ids(info.collection, [doc_id])
        found = self.desk.store.chunks(ids)
        return [found[i] for i in ids if i in found]

    @property
    def conversations(self) -> UserConversations:
        """The user's own kept conversations (knowledge/desk/conversations.py)."""
        from knowledge.desk.conversations import UserConversations

        return UserConversations(self)

    # Questions -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        collections: Sequence[str] | None = None,
        k: int | None = None,
        *,
        where: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """``where`` narrows the allowed collections' documents; it never widens them."""
        searched = self.searched(collections)
        if not searched:
            return []
        found = self.desk.search(query, searched, k, where=where)  # resolved within ``searched``
        return [r for r in found if r.chunk.collection in searched]

    def ask(
        self,
        question: str,
        collections: Sequence[str] | None = None,
        *,
        history: Sequence[Turn] = (),
        where: SearchFilter | None = None,
        fresh: bool = False,
    ) -> AnswerStream:
        """Stream an answer with the active role's persona, from allowed collections only
        (``where`` narrows them to some documents), within the user's rate limit
        (RateLimitedError says when to try again); a stored answer to the same question in
        the same scope unless ``fresh`` (knowledge.desk.answer_cache)."""
        try:
            hit = self.desk.limits.acquire(self.user, self.rate_limit)
        except RateLimitedError as exc:
            self._audit(
                "rate_limited", self.user, outcome="denied", retry_after_s=exc.retry_after_s
            )
            raise
        stream = ask_cached(
            self.desk,
            question,
            self.searched(collections),
            history=history,
            persona=self.persona,
            requester=self.requester,
            where=where,
            fresh=fresh,
        )
        return self._settled(stream, hit, question)

    def chat_tools(self) -> ChatTools:
        """Slash commands and the model's own tool calls, with this user's tool box."""
        from knowledge.tools.chatting import ChatTools

        model = lambda: self.desk.model_for(self.persona.model)  # noqa: E731
        return ChatTools.for_user(self, model, self.desk.settings)

    def _settled(self, stream: AnswerStream, hit: int, question: str) -> AnswerStream:
        """The stream; once read to the end, the tokens it used count against the limit."""

        def deltas():  # type: ignore[no-untyped-def]
            yield from stream
            self.desk.limits.settle(hit, self._tokens(stream, question))

        return AnswerStream(deltas(), stream.answer)

    def feedback(self, event_id: str, rating: Rating | None, comment: str | None = None) -> None:
        """Thumbs up/down (None takes it back) and a comment on one of the user's own answers;
        rating someone else's is refused (and audited), an unknown id is "not found"."""
        owner = str(self.desk.usage.event(event_id)["user"])  # NotFoundError when unknown
        if owner.strip().lower() != self.user:
            self._audit("permission_denied", f"feedback:{event_id}", outcome="denied")
            raise PermissionDeniedError("You can only rate your own answers.")
        self.desk.feedback(event_id, rating, comment)

    def _tokens(self, stream: AnswerStream, question: str) -> int:
        answer = stream.answer
        if answer.event_id:
            try:
                event = self.desk.usage.event(answer.event_id)
                return int(event["tokens_in"]) + int(event["tokens_out"])  # type: ignore[call-overload]
            except NotFoundError:
                pass
        return estimate_tokens(len(question) + len(answer.text))

    # Knowledge page --------------------------------------------------------------------------

    def ingest(
        self,
        uploads: Sequence[Upload | IngestReport],
        collection: str,
        progress: ProgressCallback | None = None,
        *,
        contracts: bool = False,
    ) -> list[IngestReport]:
        target = validate_collection_name(collection)
        if not self.access.may_upload(target):
            self._audit("permission_denied", f"upload:{target}", outcome="denied")
            raise PermissionDeniedError("You may not upload to this collection.")
        reports = self.desk.ingest(
            uploads, target, progress, contracts=contracts, prepare_search=True
        )
        for r in reports:
            outcome = "failed" if r.status == "failed" else "ok"
            self._audit("upload", f"{target}/{r.file_name}", outcome=outcome, status=r.status)
        return reports

    def submit(
        self,
        uploads: Sequence[Upload],
        collection: str,
        *,
        contracts: bool = False,
        tags: Sequence[str] | None = None,
    ) -> list[IngestJob]:
        """Queue the files as ingestion jobs of this user and return at once."""
        target = validate_collection_name(collection)
        if not self.access.may_upload(target):
            self._audit("permission_denied", f"upload:{target}", outcome="denied")
            raise PermissionDeniedError("You may not upload to this collection.")
        jobs = self.desk.submit(uploads, target, owner=self.user, contracts=contracts, tags=tags)
        for job in jobs:
            self._audit("upload", f"{target}/{job.file_name}", status="queued", job=job.job_id)
        return jobs

    @property
    def versions(self) -> UserVersions:
        """Document versions: chains, what changed, links (knowledge.desk.versions)."""
        from knowledge.desk.versions import UserVersions

        return UserVersions(self)

    def jobs(self, limit: int = 20) -> list[IngestJob]:
        """This user's ingestion jobs, newest first (running ones show their progress)."""
        return self.desk.jobs.recent(owner=self.user, limit=limit)

    def delete_document(self, doc_id: str) -> DocumentInfo:
        info = self.document(doc_id)
        if not self.access.may_upload(info.collection):
            self._audit("permission_denied", f"delete:{doc_id}", outcome="denied")
            raise PermissionDeniedError("You may not delete documents in this collection.")
        keywords = self.desk.retriever.keywords
        with keywords.changing(info.collection):  # other processes wait for the saved indexes
            self.desk.store.delete_document(doc_id)
            self._audit("document_deleted", f"{info.collection}/{info.file_name}", doc_id=doc_id)
            keywords.prepare(info.collection)  # rebuilt now, not at the next question
        return info

    tools = tool_box  # () -> the tools this user's roles give (knowledge.tools.box)

    # Contracts -------------------------------------------------------------------------------

    def contracts(self) -> list[ContractInfo]:
        return self.desk.contracts.contracts(self.collections())

    def clause_records(self, where: ClauseFilter | None = None) -> list[ClauseRecord]:
        where = where or ClauseFilter()
        allowed = self.collections()
        wanted = allowed if where.collections is None else self.searched(where.collections)
        return self.desk.contracts.records(replace(where, collections=wanted))

    def clause(self, clause_id: str) -> ClauseRecord:
        record = self.desk.contracts.record(clause_id)
        if not self.access.may_search(record.collection):
            self._audit("permission_denied", f"clause:{clause_id}", outcome="denied")
            raise NotFoundError(f"No clause with id {clause_id}.")
        return record

    def clause_history(self, clause_id: str) -> list[ReviewEvent]:
        self.clause(clause_id)
        return self.desk.contracts.history(clause_id)

    def review_clause(
        self,
        clause_id: str,
        action: ReviewAction,
        *,
        value: str | None = None,
        note: str | None = None,
    ) -> ClauseRecord:
        """Review as the signed-in user (the reviewer's name is never typed in)."""
        self.require("contracts")
        self.clause(clause_id)
        reviewed = self.desk.contracts.review(clause_id, action, self.user, value=value, note=note)
        self._audit("clause_reviewed", f"clause:{clause_id}", review=action)
        return reviewed

    # Analytics -------------------------------------------------------------------------------

    def _all_collections(self) -> bool:
        return any("*" in role.collections for role in self.access.roles)

    def usage_filter(self, filters: UsageFilter) -> UsageFilter:
        """``filters`` limited to the events and documents of the user's collections."""
        self.require("analytics")
        scope = None if self._all_collections() else self.collections()
        return self.desk.usage.scoped(filters, scope)

    def dashboard(self, filters: UsageFilter) -> Dashboard:
        return build_dashboard(self.desk.usage, self.usage_filter(filters))

    def usage_summary(self, filters: UsageFilter) -> dict[str, object]:
        return summary(self.desk.engine, self.usage_filter(filters))

    def usage_csv(self, filters: UsageFilter) -> bytes:
        return self.desk.usage.export_csv_bytes(self.usage_filter(filters))

    def usage_date_range(self) -> tuple[date, date] | None:
        """The first and last day with usage events (None: none yet)."""
        self.require("analytics")
        return self.desk.usage.date_range()

    def usage_roles(self) -> list[str]:
        """The roles that asked questions (for the Analytics page's role filter)."""
        self.require("analytics")
        return self.desk.usage.roles()

    # Own account -----------------------------------------------------------------------------

    def account(self) -> Account | None:
        """The signed-in user's own account (None for a user known only to the provider)."""
        return self.desk.accounts.account(self.user)

    @property
    def api_keys(self) -> UserKeys:
        """The user's API keys; an admin's view of everyone's (knowledge/desk/api_keys.py)."""
        from knowledge.desk.api_keys import UserKeys

        return UserKeys(self)

    # Administration --------------------------------------------------------------------------

    def retrieve_as(
        self, other: str, query: str, collections: Sequence[str] | None = None, k: int = 5
    ) -> tuple[list[str], list[ScoredChunk]]:
        """Run a search with exactly ``other``'s permissions: the collections they see and
        what the query finds there. For admins proving what a user can and cannot see."""
        self.require("roles")
        self._audit("retrieve_as", other)
        them = UserDesk(self.desk, other, channel=self.channel)
        return them.collections(), them.search(query, collections, k)

    def preview(self, role: Role, question: str) -> AnswerStream:
        """A role's persona answering a test question, from the collections the role may
        search (only those the admin may search too)."""
        self.require("roles")
        role_sees = Access("preview", (role,)).searchable(self.collections())
        return self.desk.ask(
            question,
            role_sees,
            persona=role.persona,
            requester=Requester(self.user, f"preview:{role.name}", self.channel),
        )
