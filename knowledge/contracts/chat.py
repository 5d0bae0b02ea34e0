# ruff: noqa: E501 - one cue pattern per category reads best on one line
"""Chat over contract terms: a question about a clause category ("which contracts auto-renew?",
"governing law of the Acme agreement") gets the matching clause records as its first sources,
so the answer cites the clause text and its page. Other questions are untouched."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from knowledge.contracts.book import ClauseFilter, ClauseRecord, ContractBook
from knowledge.core.text import content_words
from knowledge.core.types import Chunk, ScoredChunk
from knowledge.search.retrieval import Retriever

CUES: dict[str, str] = {
    "Parties": r"\bpart(?:y|ies)\b|\bcounterpart|\bwho (?:signed|are the)",
    "Agreement Date": r"\b(?:agreement|contract) date\b|\bdated\b|\bwhen was\b.*\b(?:signed|made|dated)",
    "Effective Date": r"\beffective\b|\bstart date\b|\bcommence",
    "Expiration Date": r"\bexpir|\bend date\b|\bhow long\b|\binitial term\b|\bterm of\b|\bwhen does\b.*\bend",
    "Renewal Term": r"\brenew",
    "Notice Period To Terminate Renewal": r"\bnotice period\b|\bnon-?renewal\b|\bnotice\b.*\b(?:terminat|renew)",
    "Governing Law": r"\bgoverning law\b|\bgoverned by\b|\bjurisdiction\b|\bwhich law\b|\blaw of\b",
    "Most Favored Nation": r"\bmost favou?red\b|\bmfn\b",
    "Non-Compete": r"\bnon-?compet|\bcompet(?:e|ing|ition)\b",
    "Exclusivity": r"\bexclusiv",
    "No-Solicit Of Customers": r"\bsolicit\w*\b.*\bcustomers?\b",
    "No-Solicit Of Employees": r"\bsolicit\w*\b.*\bemployees?\b|\bpoach",
    "Non-Disparagement": r"\bdisparag",
    "Termination For Convenience": r"\bterminat\w*\b.*\b(?:convenience|any reason|without cause|at will)",
    "Rofr/Rofo/Rofn": r"\bright of first\b|\brofr\b|\brofo\b|\brofn\b",
    "Change Of Control": r"\bchange (?:of|in) control\b|\bmerger\b|\bacquired\b",
    "Anti-Assignment": r"\bassign(?:ment|able)?\b",
    "Revenue/Profit Sharing": r"\broyalt|\brevenue shar|\bprofit shar",
    "Price Restrictions": r"\bprice (?:restriction|increase|cap)",
    "Minimum Commitment": r"\bminimum\b",
    "Volume Restriction": r"\bvolume\b|\bmaximum quantit",
    "Ip Ownership Assignment": r"\b(?:ip|intellectual property)\b.*\b(?:own|assign)",
    "Joint Ip Ownership": r"\bjoint(?:ly)?\b.*\bown",
    "License Grant": r"\blicen[cs]e grant|\bgrants?\b.*\blicen[cs]e|\blicen[cs]es?\b",
    "Non-Transferable License": r"\bnon-?transferable\b",
    "Irrevocable Or Perpetual License": r"\birrevocable\b|\bperpetual\b",
    "Source Code Escrow": r"\bescrow\b",
    "Post-Termination Services": r"\bafter (?:termination|expiration)\b|\bpost-?termination\b|\btransition",
    "Audit Rights": r"\baudit",
    "Uncapped Liability": r"\buncapped\b|\bunlimited liability\b",
    "Cap On Liability": r"\b(?:cap|limit)\w*\b.*\bliabilit|\bliabilit\w*\b.*\b(?:cap|limit)",
    "Liquidated Damages": r"\bliquidated damages\b|\btermination fee\b",
    "Warranty Duration": r"\bwarrant",
    "Insurance": r"\binsur",
    "Covenant Not To Sue": r"\bnot to sue\b|\bcovenant not\b",
    "Third Party Beneficiary": r"\bthird[- ]party beneficiar",
}  # fmt: skip
_CUES = {category: re.compile(pattern, re.IGNORECASE) for category, pattern in CUES.items()}
_GENERIC_TITLE_WORDS = frozenset(
    {"agreement", "contract", "exhibit", "amendment", "inc", "llc", "ltd", "corp", "company"}
)
CONFIRMED_SCORE = 0.95


def asked_categories(question: str) -> list[str]:
    """The clause categories a question asks about (none for an ordinary question)."""
    return [category for category, cue in _CUES.items() if cue.search(question)]


def named_contracts(question: str, records: Sequence[ClauseRecord]) -> set[str]:
    """The documents whose title or file name the question names, by distinctive words."""
    asked = content_words(question)
    best: dict[str, int] = {}
    for r in records:
        words = content_words(f"{r.title} {re.sub(r'[_.-]+', ' ', r.file_name)}")
        best[r.doc_id] = len((words - _GENERIC_TITLE_WORDS) & asked)
    top = max(best.values(), default=0)
    return {doc for doc, hits in best.items() if hits == top} if top > 0 else set()


def clause_chunk(record: ClauseRecord) -> Chunk:
    value = f" ({record.value})" if record.value else ""
    text = f"{record.category}{value}: {record.text}"
    return Chunk(
        id=f"clause-{record.id}",
        doc_id=record.doc_id,
        collection=record.collection,
        file_name=record.file_name,
        title=record.title,
        page_start=record.page,
        page_end=record.page,
        heading_path=(record.category,),
        char_start=0,
        char_end=len(record.text),
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
    )


def clause_sources(
    book: ContractBook, question: str, collections: Sequence[str], limit: int
) -> list[ScoredChunk]:
    """Clause records answering a contract-terms question, the best-supported first."""
    categories = asked_categories(question)
    if not categories or not collections:
        return []
    statuses = ("extracted", "confirmed", "corrected")
    records = book.records(
        ClauseFilter(collections=collections, categories=categories, statuses=statuses)
    )
    named = named_contracts(question, records)
    if named:
        records = [r for r in records if r.doc_id in named]
    ranked = sorted(records, key=lambda r: -_score(r))
    return [ScoredChunk(clause_chunk(r), _score(r)) for r in ranked[:limit]]


def _score(record: ClauseRecord) -> float:
    if record.status in ("confirmed", "corrected"):
        return CONFIRMED_SCORE
    return round(0.5 + 0.4 * record.confidence, 4)


class ClauseAwareRetriever(Retriever):
    """The Assistant's retriever: clause records first when the question is about contract
    terms, then the ordinary passages. It delegates to the desk's retriever (and its caches)
    rather than building indexes of its own."""

    def __init__(self, base: Retriever, book: ContractBook) -> None:  # noqa: D107
        # deliberately no super().__init__(): every search goes to ``base``
        self.base = base
        self.book = book
        self.store = base.store
        self.embedder = base.embedder

    def search(
        self,
        query: str,
        collections: Sequence[str],
        k: int = 5,
        *,
        doc_ids: Sequence[str] | None = None,
    ) -> list[ScoredChunk]:
        passages = self.base.search(query, collections, k, doc_ids=doc_ids)
        clauses = clause_sources(self.book, query, collections, k)
        if doc_ids is not None:
            clauses = [c for c in clauses if c.chunk.doc_id in doc_ids]
        if not clauses:
            return passages
        quoted = {(c.chunk.doc_id, c.chunk.page_start) for c in clauses}
        others = [p for p in passages if (p.chunk.doc_id, p.chunk.page_start) not in quoted]
        return (clauses + others)[:k]
