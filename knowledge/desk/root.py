"""The composition root: one `Desk` per data directory, built from settings with lazy imports."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.chunking import CHUNKER_VERSION
from knowledge.access.accounts import AccountBook
from knowledge.access.api_keys import ApiKeyBook
from knowledge.access.audit import AuditLog
from knowledge.access.ratelimit import RateLimiter
from knowledge.access.rolebook import RoleBook
from knowledge.assistant.answering import Assistant
from knowledge.assistant.chat import BACKENDS, ChatModel, build_chat_model
from knowledge.assistant.compliance import Blocked, ComplianceRules, guarded_stream
from knowledge.assistant.evidence import EvidenceJudge
from knowledge.assistant.personas import Persona, Turn
from knowledge.assistant.routing import ModelRouter
from knowledge.contracts.book import ContractBook
from knowledge.contracts.chat import ClauseAwareRetriever
from knowledge.core import metrics
from knowledge.core.db import make_engine, sqlite_url, upgrade
from knowledge.core.errors import KdeskError
from knowledge.core.settings import Settings
from knowledge.core.types import AnswerStream, DocumentInfo, IngestReport, Requester, ScoredChunk
from knowledge.desk.answer_cache import AnswerCache
from knowledge.desk.ingestion import (
    IngestionPipeline,
    ProgressCallback,
    Upload,
    documents_under,
)
from knowledge.desk.jobs import IngestJob, JobBook
from knowledge.search.embeddings import Embedder, SentenceTransformerEmbedder
from knowledge.search.filters import SearchFilter
from knowledge.search.retrieval import Retriever
from knowledge.search.store import KnowledgeStore
from knowledge.search.vectors import VectorIndex, open_vector_index
from knowledge.search.versions import VersionBook
from knowledge.tools.base import ToolSource
from knowledge.tools.calls import ToolCallLog
from knowledge.tools.registry import ToolRegistry, desk_registry
from knowledge.usage.events import Rating, UsageLog
from knowledge.usage.recording import MeteredModel, recorded_stream

if TYPE_CHECKING:
    from knowledge.desk.facade import UserDesk
    from knowledge.desk.workers import JobRunner

SENTENCE_VECTORS_VERSION = 1  # documents stored before sentence vectors are re-embedded


class Desk:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        index: VectorIndex | None = None,
        model: ChatModel | None = None,
        tool_sources: Sequence[ToolSource] = (),
    ) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.database_url or sqlite_url(settings.database_path))
        upgrade(self.engine)  # the schema at the newest migration before anything uses it
        self.store = KnowledgeStore(
            self.engine, index or open_vector_index(settings), settings.files_dir
        )
        self.versions = VersionBook(self.store)
        self.contracts = ContractBook(self.engine)
        self.usage = UsageLog(
            self.engine,
            settings.question_storage,
            embed=lambda texts: self.embedder.embed_documents(texts),
            embedding_model=settings.embedding_model or "all-MiniLM-L6-v2",
        )
        self.audit = AuditLog(self.engine)
        self.roles = RoleBook(self.engine, self.audit)
        self.api_keys = ApiKeyBook(self.engine, self.audit)  # other programs acting as users
        self.accounts = AccountBook(
            self.engine,
            self.roles,
            self.audit,
            api_keys=self.api_keys,
            lockout_attempts=settings.lockout_attempts,
            lockout_minutes=settings.lockout_minutes,
            min_password_length=settings.password_min_length,
        )
        self.limits = RateLimiter(self.engine)
        self.tool_calls = ToolCallLog(self.engine, settings.question_storage)
        self.tool_registry: ToolRegistry = desk_registry(lambda: self.model, settings, tool_sources)
        self.jobs = JobBook(self.engine, settings.incoming_dir, settings.worker_heartbeat_s)
        self._runner: JobRunner | None = None
        self._broker: object | None = None
        self._embedder = embedder
        self._model = model
        self._models: dict[str, ChatModel] = {}
        self.router = ModelRouter(settings, self.model_for)  # fast / strong (assistant/routing)
        self._retriever: Retriever | None = None
        self._background = False  # start_background(): the retriever refreshes its indexes
        self._judge: EvidenceJudge | None = None
        self._lock = threading.RLock()
        self.answer_cache = AnswerCache.for_desk(self)  # UserDesk.ask looks here first

    # Components, built on first use: once, under the lock (an RLock: building one can need
    # another), then read without it ----------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = SentenceTransformerEmbedder(
                        self.settings.embedding_model or None,
                        self.settings.embedding_batch_size,
                        int8=self.settings.embedding_int8,
                    )
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            with self._lock:
                if self._retriever is None:
                    s = self.settings
                    self._retriever = Retriever(
                        self.store,
                        self.embedder,
                        candidates=s.candidates,
                        hybrid=s.hybrid,
                        focus=s.focus,
                        title_weight=s.title_weight,
                        sentences=s.sentence_stage,
                        indexes_dir=s.indexes_dir,
                    )
                    if self._background:
                        self._retriever.keywords.start_refresh(s.index_refresh_s)
        return self._retriever

    def start_background(self) -> None:
        """For a long-running app process: the job runner (without Redis it resumes the jobs
        an earlier run left unfinished); once search is in use, its indexes kept fresh in the
        background (changes by workers and other replicas: no request waits for a rebuild);
        and with ``KDESK_WARM_UP`` the embedding model and indexes loaded now, in a thread,
        rather than in the first question."""
        self._background = True
        self.runner  # noqa: B018
        if self._retriever is not None:
            self._retriever.keywords.start_refresh(self.settings.index_refresh_s)
        if self.settings.warm_up:
            threading.Thread(target=self._warm_up, name="kdesk-warm-up", daemon=True).start()

    def stop_background(self) -> None:
        self._background = False
        if self._retriever is not None:
            self._retriever.keywords.stop_refresh()

    @property
    def judge(self) -> EvidenceJudge:
        if self._judge is None:
            with self._lock:
                if self._judge is None:
                    self._judge = EvidenceJudge(self.retriever, path=self.settings.evidence_model)
        return self._judge

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = build_chat_model(self.settings)
        return self._model

    @property
    def broker(self):  # type: ignore[no-untyped-def]
        """The Dramatiq broker on KDESK_REDIS_URL (knowledge.desk.workers)."""
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    from knowledge.desk.workers import redis_broker

                    s = self.settings
                    self._broker = redis_broker(s.redis_url, s.worker_heartbeat_s)
        return self._broker

    @property
    def runner(self) -> JobRunner:
        """Who runs ingestion jobs: `kdesk worker` processes on Redis, else a thread here."""
        if self._runner is None:
            with self._lock:
                if self._runner is None:
                    from knowledge.desk.workers import build_runner

                    self._runner = build_runner(self, resume=self._background)
        return self._runner

    def _warm_up(self) -> None:
        """The model's first query here; building the retriever starts its refresher, which
        loads every collection's indexes (from disk where saved) in its own thread."""
        try:
            self.retriever.embedder.embed_query("warm up")
        except Exception:  # noqa: BLE001 - the first question will try again, and say why
            logging.getLogger("kdesk.desk").warning("warm-up failed", exc_info=True)

    def close(self) -> None:
        """Stop the background work this desk started (the job thread finishes its job)."""
        self.stop_background()
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def submit(
        self,
        uploads: Sequence[Upload],
        collection: str | None = None,
        *,
        owner: str = "",
        contracts: bool = False,
        tags: Sequence[str] | None = None,
    ) -> list[IngestJob]:
        """Queue the files as ingestion jobs and return at once (knowledge.desk.jobs); the
        jobs' rows tell their progress and report. Bad tags stop before anything is queued."""
        from knowledge.search.filters import normalise_tags

        given = None if tags is None else normalise_tags(tags)
        for upload in uploads:
            if upload.tags is not None:
                normalise_tags(upload.tags)
        target = self.store.ensure_collection(collection or self.settings.default_collection)
        uploads = self._resolve_versions(uploads, target)
        jobs = [
            self.jobs.create(u, target, owner, tags=given, contracts=contracts) for u in uploads
        ]
        for job in jobs:
            self.runner.submit(job.job_id)
        return jobs

    def _resolve_versions(self, uploads: Sequence[Upload], collection: str) -> list[Upload]:
        """Each upload's ``supersedes`` (a file name or id of ``collection``) as a doc id; an
        unknown one, or one earlier version given to two files, stops before anything is
        queued."""
        resolved = [
            replace(u, supersedes=self.versions.resolve(collection, u.supersedes).doc_id)
            if u.supersedes
            else u
            for u in uploads
        ]
        chosen = [u.supersedes for u in resolved if u.supersedes]
        if len(chosen) != len(set(chosen)):
            raise KdeskError("An earlier version can be replaced by one new file only.")
        return resolved

    def model_for(self, spec: str) -> ChatModel:
        """A persona's model: "" the desk's own, "BACKEND:MODEL" or a model name of the
        configured backend (built once, then shared)."""
        if not spec:
            return self.model
        if (built := self._models.get(spec)) is not None:
            return built
        with self._lock:
            if spec not in self._models:
                backend, _, name = spec.partition(":")
                if backend not in BACKENDS:
                    backend, name = "", spec  # "llama3.2:3b" is a model name, not a backend
                self._models[spec] = build_chat_model(
                    self.settings, backend=backend or None, model=name or None
                )
            return self._models[spec]

    def for_user(self, user: str, *, role: str | None = None, channel: str = "api") -> UserDesk:
        """The desk as ``user`` may use it (their roles read now, from the database), asking
        in ``role`` (one of theirs; default: their first)."""
        from knowledge.desk.facade import UserDesk

        return UserDesk(self, user, role=role, channel=channel)

    def assistant(self, model: ChatModel | None = None) -> Assistant:
        s = self.settings
        return Assistant(
            ClauseAwareRetriever(self.retriever, self.contracts),
            model or self.model,
            top_k=s.top_k,
            prompt_sources=s.prompt_sources,
            source_chars=s.source_chars,
            abstain_below=s.abstain_below,
            weak_below=s.weak_below,
            judge=self.judge,
            rewrite_followups=s.rewrite_followups,
        )

    def pipeline_fingerprint(self) -> str:
        s = self.settings
        return (
            f"chunker{CHUNKER_VERSION}/{s.chunk_size}/{s.chunk_overlap}/{self.embedder.name}"
            f"/sentences{SENTENCE_VECTORS_VERSION}"
        )

    # Use cases: trusted callers name the collections; people go through for_user() -----------

    def search(
        self,
        query: str,
        collections: Sequence[str] | None = None,
        k: int | None = None,
        *,
        where: SearchFilter | None = None,
    ) -> list[ScoredChunk]:
        """Passages from ``collections`` (default: all) and, with ``where``, only from the
        documents there that it lets through ([] when it lets none through)."""
        searched = self._collections(collections)
        doc_ids = self.filtered_doc_ids(searched, where, query)
        if doc_ids == []:
            return []
        return self.retriever.search(query, searched, k or self.settings.top_k, doc_ids=doc_ids)

    def filtered_doc_ids(
        self, collections: Sequence[str], where: SearchFilter | None, question: str = ""
    ) -> list[str] | None:
        """The documents of ``collections`` that ``where`` lets through, without superseded
        versions unless ``question`` asks for an earlier one or ``where`` lets them in
        (knowledge.search.versions); None: every document."""
        hidden = self.versions.hidden(collections, question, where)
        if (where is None or where.empty) and not hidden:
            return None
        found = self.store.filtered_doc_ids(collections, where or SearchFilter())
        return [doc_id for doc_id in found if doc_id not in hidden]

    def set_tags(self, doc_id: str, tags: Sequence[str]) -> DocumentInfo:
        """Change a document's tags (normalised) without re-reading or re-embedding it."""
        return self.store.set_tags(doc_id, tags)

    def ask(
        self,
        question: str,
        collections: Sequence[str] | None = None,
        *,
        history: Sequence[Turn] = (),
        persona: Persona | None = None,
        requester: Requester | None = None,
        where: SearchFilter | None = None,
    ) -> AnswerStream:
        """Stream an answer; reading the stream to the end records the exchange as a usage
        event (``stream.answer.event_id``), on behalf of ``requester`` (default: anonymous).
        ``where`` answers from the documents it lets through only (none: no answer)."""
        if not question.strip():
            raise KdeskError("Please type a question.")
        persona = persona or Persona(
            temperature=self.settings.temperature, max_tokens=self.settings.max_answer_tokens
        )
        searched = self._collections(collections)
        metered = MeteredModel(self.router.model(persona))
        try:
            doc_ids = self.filtered_doc_ids(searched, where, question)
            stream = self.assistant(metered).ask(
                question, searched, history=history, persona=persona, doc_ids=doc_ids
            )
        except Exception:
            metrics.REQUEST_ERRORS.labels("retrieval").inc()
            raise
        who = requester or Requester()
        if persona.banned_phrases:  # compliance applies before anything is shown or recorded
            rules = ComplianceRules(persona.banned_phrases, persona.name)
            stream = guarded_stream(stream, rules, lambda b: self._blocked(b, who, persona))
        return recorded_stream(stream, self.usage, metered, who, searched, persona.name)

    def _blocked(self, blocked: Blocked, who: Requester, persona: Persona) -> None:
        self.audit.record(
            who.user,
            "compliance_block",
            persona.name,
            outcome="denied",
            channel=who.channel,
            phrase=blocked.phrase,
            rule=blocked.action,
        )

    def feedback(self, event_id: str, rating: Rating | None, comment: str | None = None) -> None:
        """Thumbs up/down (None takes it back) and an optional comment on a recorded answer."""
        self.usage.set_feedback(event_id, rating, comment)
        if rating:
            metrics.FEEDBACK.labels(rating).inc()

    def _collections(self, collections: Sequence[str] | None) -> list[str]:
        return list(collections) if collections is not None else self.store.collection_names()

    def ingest_paths(
        self,
        paths: Iterable[str | Path],
        collection: str | None = None,
        progress: ProgressCallback | None = None,
        *,
        tags: Sequence[str] | None = None,
        prepare_search: bool = False,
    ) -> list[IngestReport]:
        target = collection or self.settings.default_collection
        uploads = self.read_files(documents_under(paths), target)
        return self.ingest(uploads, target, progress, tags=tags, prepare_search=prepare_search)

    def read_files(
        self, paths: Iterable[Path], collection: str | None = None
    ) -> list[Upload | IngestReport]:
        """Each file as an upload, or a failed report saying why it could not be read."""
        target = collection or self.settings.default_collection
        read: list[Upload | IngestReport] = []
        for path in paths:
            try:
                read.append(Upload(path.name, path.read_bytes()))
            except OSError as exc:
                reason = f"cannot read {path}: {exc.strerror or exc}"
                read.append(IngestReport(path.name, target, "failed", reason=reason))
        return read

    def ingest(
        self,
        uploads: Sequence[Upload | IngestReport],
        collection: str | None = None,
        progress: ProgressCallback | None = None,
        *,
        contracts: bool = False,
        tags: Sequence[str] | None = None,
        prepare_search: bool = False,
        writer: str = "",
    ) -> list[IngestReport]:
        """Ingest files one by one (knowledge.desk.ingestion.IngestionPipeline): a bad file
        gets a failed report and changes nothing stored."""
        return IngestionPipeline(self).ingest(
            uploads,
            collection,
            progress,
            contracts=contracts,
            tags=tags,
            prepare_search=prepare_search,
            writer=writer,
        )


def open_desk(settings: Settings, **components: object) -> Desk:
    return Desk(settings, **components)  # type: ignore[arg-type]
