"""The answer cache: hits for the same and a paraphrased question, misses across personas,
permission sets and filters, invalidation on upload and delete, a fresh answer on request; on
the database and on Redis."""

from __future__ import annotations

import time

import numpy as np
import pytest

from knowledge.access.ratelimit import RateLimit, RateLimitedError
from knowledge.access.roles import Role
from knowledge.assistant.personas import Persona
from knowledge.core.settings import Settings
from knowledge.desk.answer_cache import AnswerCache, CacheKey
from knowledge.desk.cache_stores import CacheEntry, DatabaseCacheStore, RedisCacheStore
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from knowledge.search.filters import SearchFilter
from knowledge.usage.analytics import summary
from knowledge.usage.events import UsageFilter
from tests.conftest import ScriptedChatModel
from tests.pdfs import make_pdf

LEAVE = [
    "Leave Policy\n\nFull-time employees are entitled to 25 working days of paid annual leave "
    "per year. Leave requests are approved by the team lead two weeks in advance."
]
TRAVEL = [
    "Travel Policy\n\nThe daily meal allowance is 60 euros when travelling. Hotel rooms are "
    "limited to 180 euros per night in capital cities."
]
QUESTION = "How many days of annual leave do full-time employees get?"
PARAPHRASE = "how many days of annual leave do full time employees get"  # cosine 0.98
PASSWORD = "a long test password"


def build(desk: Desk) -> Desk:
    desk.ingest([Upload("leave.pdf", make_pdf(LEAVE, title="Leave Policy"))], "HR")
    desk.ingest([Upload("travel.pdf", make_pdf(TRAVEL, title="Travel Policy"))], "Finance")
    desk.roles.save(Role("hr", pages=("chat",), collections=("HR",)), "test")
    desk.roles.save(Role("staff", pages=("chat",), collections=("HR", "Finance")), "test")
    desk.roles.save(
        Role("coach", pages=("chat",), collections=("HR",), persona=Persona("coach", "Be warm.")),
        "test",
    )
    for user, role in (("hanna", "hr"), ("heidi", "hr"), ("sam", "staff"), ("cora", "coach")):
        desk.accounts.add(user, [role], "test", password=PASSWORD)
    return desk


@pytest.fixture
def office(desk: Desk) -> Desk:
    return build(desk)


def ask(desk: Desk, user: str, question: str = QUESTION, **kwargs):
    stream = desk.for_user(user).ask(question, **kwargs)
    "".join(stream)
    return stream.answer


def test_the_same_question_gets_the_stored_answer_with_its_citations(office: Desk, model):
    first = ask(office, "hanna")
    second = ask(office, "hanna")
    assert len(model.calls) == 1
    assert not first.cached and second.cached and second.route == "cache"
    assert second.text == first.text
    assert [c.chunk.id for c in second.citations] == [c.chunk.id for c in first.citations]
    assert second.citations and second.citations[0].chunk.file_name == "leave.pdf"
    event = office.usage.event(second.event_id or "")
    assert event["cached"] is True and event["tokens_in"] == event["tokens_out"] == 0
    assert office.usage.event(first.event_id or "")["cached"] is False
    rate = summary(office.engine, UsageFilter())["answer_cache"]
    assert rate == {"answers": 2, "cached": 1, "hit_rate": 0.5}
    assert summary(office.engine, UsageFilter())["routes"]["cache"]["tokens"] == 0


def test_another_user_with_the_same_role_and_a_paraphrase_hit(office: Desk, model):
    ask(office, "hanna")
    found = ask(office, "heidi", PARAPHRASE)
    assert found.cached and found.question == PARAPHRASE and len(model.calls) == 1


def test_a_different_question_persona_permission_set_or_filter_misses(office: Desk, model):
    ask(office, "hanna")
    assert not ask(office, "hanna", "Who approves leave requests?").cached
    assert not ask(office, "cora").cached  # another persona on the same collection
    assert not ask(office, "sam").cached  # searches HR and Finance
    assert ask(office, "sam").cached  # ... its own scope is cached in turn
    only = SearchFilter(documents=("leave.pdf",))
    assert not ask(office, "hanna", where=only).cached
    assert ask(office, "hanna", where=only).cached
    assert len(model.calls) == 5


def test_an_upload_or_a_deletion_in_a_searched_collection_invalidates(office: Desk, model):
    ask(office, "sam")
    extra = "Remote Work\n\nEmployees may work remotely two days per week with approval."
    office.ingest([Upload("remote.pdf", make_pdf([extra], title="Remote Work"))], "HR")
    assert not ask(office, "sam").cached
    assert ask(office, "sam").cached
    travel = next(d for d in office.store.documents(["Finance"]) if d.file_name == "travel.pdf")
    office.store.delete_document(travel.doc_id)
    assert not ask(office, "sam").cached
    assert len(model.calls) == 3


def test_a_fresh_answer_bypasses_the_cache_and_replaces_the_entry(office: Desk, model):
    ask(office, "hanna")
    fresh = ask(office, "hanna", fresh=True)
    assert not fresh.cached and len(model.calls) == 2
    assert ask(office, "hanna").cached and len(model.calls) == 2


def test_a_cached_answer_counts_against_the_rate_limit(office: Desk):
    office.roles.save(
        Role("hr", pages=("chat",), collections=("HR",), rate_limit=RateLimit(2, 0, 600)), "test"
    )
    ask(office, "hanna")
    assert ask(office, "hanna").cached
    with pytest.raises(RateLimitedError):
        ask(office, "hanna")


def test_an_answer_with_an_error_is_not_kept(desk: Desk):
    desk._model = ScriptedChatModel("Employees get 25 days [1].", fail_after=0)
    office = build(desk)
    assert ask(office, "hanna").error
    assert not ask(office, "hanna").cached


class Fixed:
    """Vectors by text, to test the lookup without the embedding model."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = {
            k: np.asarray(v, np.float32) / np.linalg.norm(v) for k, v in vectors.items()
        }

    def __call__(self, text: str) -> np.ndarray:
        return self.vectors[text]


def test_a_near_question_needs_the_threshold_and_the_same_numbers(desk: Desk):
    embed = Fixed({"revenue in q3 2024": [1, 0], "revenue in q2 2024": [1, 0.01],
                   "revenue for q3 2024": [1, 0.01], "sales in q3 2024": [1, 1]})  # fmt: skip
    cache = AnswerCache(
        DatabaseCacheStore(desk.engine),
        lambda: {"HR": 1},
        embed,
        lambda ids: {},
        threshold=0.97,
        ttl_s=60,
    )
    persona = Persona()
    key = cache.key("Revenue in Q3 2024?", ["HR"], None, persona, "employee")
    stored = {"text": "t", "citations": [], "sources": []}
    payload = stored | {k: None for k in ("abstained", "model", "evidence", "quoted")}
    payload |= {"dropped": 0, "confidence": None, "verdict": None, "compliance": None}
    payload |= {"route": "fast", "route_reason": "r", "total_ms": 1.0}
    cache.store.put(key.scope, CacheEntry(key.question_hash, key.question, key.vector, payload,
                                          time.time() + 60))  # fmt: skip
    near = cache.key("revenue for Q3 2024", ["HR"], None, persona, "employee")
    assert cache.lookup(near) is not None
    assert cache.lookup(cache.key("revenue in Q2 2024", ["HR"], None, persona, "employee")) is None
    assert cache.lookup(cache.key("sales in Q3 2024", ["HR"], None, persona, "employee")) is None
    other_role = cache.key("revenue in Q3 2024", ["HR"], None, persona, "manager")
    assert cache.lookup(other_role) is None
    expired = CacheKey(key.scope, key.question, key.question_hash, key.vector)
    cache.store.put(key.scope, CacheEntry(key.question_hash, key.question, key.vector, payload,
                                          time.time() - 1))  # fmt: skip
    assert cache.store.entry(expired.scope, expired.question_hash) is not None
    assert cache.lookup(near) is None  # expired: never served


def test_redis_keeps_the_cache_when_configured(tmp_path, embedder, redis_url: str):
    model = ScriptedChatModel("The answer is in the sources [1].")
    settings = Settings(data_dir=tmp_path / "data", model_backend="ollama", redis_url=redis_url)
    office = build(Desk(settings, embedder=embedder, model=model))
    assert isinstance(office.answer_cache.store, RedisCacheStore)
    ask(office, "hanna")
    assert ask(office, "heidi", PARAPHRASE).cached and len(model.calls) == 1
    assert office.answer_cache.store.client.keys("kdesk:answers:*")
    office.ingest([Upload("more.pdf", make_pdf(["More\n\nSick leave is 20 days."]))], "HR")
    assert not ask(office, "hanna").cached and len(model.calls) == 2


def test_the_threshold_is_the_measured_one_for_the_embedding_mode(desk: Desk):
    assert AnswerCache.for_desk(desk).threshold == 0.94  # int8 vectors (the default)
    desk.settings = desk.settings.model_copy(update={"embedding_int8": False})
    assert AnswerCache.for_desk(desk).threshold == 0.97
    desk.settings = desk.settings.model_copy(update={"answer_cache_threshold": 0.99})
    assert AnswerCache.for_desk(desk).threshold == 0.99


def test_passages_of_clause_records_are_kept_whole_and_others_read_again():
    from knowledge.core.types import Answer, Chunk, Citation, ScoredChunk
    from knowledge.desk.answer_cache import from_payload, to_payload

    def chunk(chunk_id: str) -> Chunk:
        return Chunk(chunk_id, "d", "Contracts", "msa.pdf", "MSA", 2, 2, ("Term",), 0, 9,
                     "Term text", "h", sentences=((0, 9),), page_labels={2: "p. 2"})  # fmt: skip

    record, stored = chunk("clause-1"), chunk("c1")
    cited = [Citation(1, record, 0.9, "Term text", 2)]
    found = [ScoredChunk(record, 0.9, (0.8,)), ScoredChunk(stored, 0.5)]
    answer = Answer("q", "It renews [1].", False, "m", citations=cited, sources=found)
    payload = to_payload(answer)
    back = from_payload(payload, lambda ids: {i: stored for i in ids if i == "c1"})
    assert back is not None and back.citations[0].chunk == record
    assert back.sources[1].chunk is stored and back.sources[0].sentence_scores == (0.8,)
    assert from_payload(payload, lambda ids: {}) is None  # a stored passage is gone
