"""Duplicates: a file whose content is already stored in the collection under another name.

Three ways a file can be a copy of a stored document, checked before anything is embedded:

- the same file (the same sha256 of its bytes);
- the same text: the same passages in the same order (the chunks' content hashes), e.g. a PDF
  generated again with another title or producer in its metadata;
- near-identical text: the Jaccard similarity of the two texts' word 5-shingles (lower-case
  words, punctuation ignored, each passage shingled on its own) is at least ``NEAR_JACCARD``
  and both have the same names and figures (``marks``): a sentence reworded is a duplicate,
  a contract from the same template with other parties or amounts, or a policy whose figure
  changed ("26 weeks" -> "40 weeks"), is not (two short contracts of one template with
  another buyer and governing law score 0.90). The marks are compared as sets: a figure
  changed to one the document already has elsewhere goes unnoticed.

Only the few documents sharing most passages with the file are compared by text (one query
over the collection's chunks), so the check costs little in a large collection. Why shingles
and not "95% of the chunk hashes shared": one changed sentence changes one or two chunks, so
a short document's share drops below 95% (8 chunks: 0.875) while its Jaccard stays high
(0.967). Measured on the 29 evaluation PDFs (everyday policies, sec10q): one sentence added
to any of them scores 0.996-0.999 with the same names and figures (all 29 found); the most
similar pair of different documents (one company's successive 10-Qs, sharing much
boilerplate) scores 0.71, and no pair of the 406 reaches 0.9. A copy stored with other
chunk settings shares no passage hash and is not found (search still shows a passage once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest.chunking import ChunkDraft
from knowledge.core.types import DocumentInfo
from knowledge.search.schema import ChunkRow, DocumentRow, _document_info
from knowledge.search.store import KnowledgeStore

NEAR_JACCARD = 0.9
SHINGLE_WORDS = 5
CANDIDATES = 5  # the documents sharing most passages with the file, compared by text
_WORD = re.compile(r"\w+")
# names and figures: capitalised words, and words with a digit (amounts, dates, clause numbers)
_MARK = re.compile(r"\b(?:[A-Z][\w&'-]*|\w*\d[\w./,-]*)")


@dataclass(frozen=True)
class Duplicate:
    document: DocumentInfo  # the stored document the file duplicates
    how: str  # "same file", "same text", "near-identical text"
    similarity: float = 1.0  # the shingle Jaccard of the two texts

    def reason(self) -> str:
        detail = self.how
        if self.how == "near-identical text":
            detail += f", {int(self.similarity * 100)}% similar"  # 99.9% is not 100%
        return f"duplicate of {self.document.file_name} in {self.document.collection} ({detail})"


def shingles(texts: Iterable[str], size: int = SHINGLE_WORDS) -> set[int]:
    """The hashed word ``size``-shingles of each text (a shorter text: itself, once). The
    hashes differ between processes (str hashing is salted): compare within one, never store."""
    found: set[int] = set()
    for text in texts:
        words = _WORD.findall(text.casefold())
        if len(words) < size:
            if words:
                found.add(hash(tuple(words)))
            continue
        found.update(hash(tuple(words[i : i + size])) for i in range(len(words) - size + 1))
    return found


def marks(texts: Iterable[str]) -> set[str]:
    """The names and figures in these texts (capitalised words but a sentence's first, and
    words with a digit): two copies of one template (other parties, another governing law,
    other amounts) differ in them, a reworded sentence rarely does."""
    found: set[str] = set()
    for text in texts:
        for match in _MARK.finditer(text):
            word = match.group().rstrip(".,")
            if not any(c.isdigit() for c in word):  # a capitalised word: not a sentence's first
                before = text[: match.start()].rstrip(" \t")
                if not before or before[-1] in ".!?:;\n\"'(":
                    continue
            found.add(word)
    return found


def jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def find_duplicate(
    store: KnowledgeStore,
    collection: str,
    file_name: str,
    sha256: str,
    drafts: Sequence[ChunkDraft],
) -> Duplicate | None:
    """The document of ``collection`` stored under another file name that this file (its
    bytes' ``sha256``, its chunks ``drafts``) duplicates, or None."""
    with Session(store.engine) as session:
        same_file = session.scalars(
            select(DocumentRow)
            .where(
                DocumentRow.collection == collection,
                DocumentRow.sha256 == sha256,
                DocumentRow.file_name != file_name,
            )
            .order_by(DocumentRow.ingested_at, DocumentRow.doc_id)
        ).first()
        if same_file is not None:
            return Duplicate(_document_info(same_file), "same file")
        hashes = [d.content_hash for d in drafts]
        if not any(d.text.strip() for d in drafts):
            return None  # no text (a scan): only the bytes can tell
        shared: dict[str, int] = {}
        distinct = sorted(set(hashes))
        for start in range(0, len(distinct), 500):
            rows = session.execute(
                select(ChunkRow.doc_id, func.count(func.distinct(ChunkRow.content_hash)))
                .join(DocumentRow, DocumentRow.doc_id == ChunkRow.doc_id)
                .where(
                    ChunkRow.collection == collection,
                    ChunkRow.content_hash.in_(distinct[start : start + 500]),
                    DocumentRow.file_name != file_name,
                )
                .group_by(ChunkRow.doc_id)
            )
            for doc_id, count in rows:
                shared[doc_id] = shared.get(doc_id, 0) + int(count)
        best = sorted(shared, key=lambda d: (-shared[d], d))[:CANDIDATES]
        mine: set[int] | None = None
        my_marks: set[str] = set()
        found: Duplicate | None = None
        for doc_id in best:
            stored = session.execute(
                select(ChunkRow.content_hash, ChunkRow.text)
                .where(ChunkRow.doc_id == doc_id)
                .order_by(ChunkRow.ordinal)
            ).all()
            row = session.get(DocumentRow, doc_id)
            if row is None:
                continue
            if [h for h, _ in stored] == hashes:
                return Duplicate(_document_info(row), "same text")
            if mine is None:
                mine = shingles(d.text for d in drafts)
                my_marks = marks(d.text for d in drafts)
            score = jaccard(mine, shingles(text for _, text in stored))
            same_marks = score >= NEAR_JACCARD and my_marks == marks(t for _, t in stored)
            if same_marks and (found is None or score > found.similarity):
                found = Duplicate(_document_info(row), "near-identical text", score)
        return found
