"""Citations checked against the sources: every sentence of an answer must be supported by the
passage it cites (else it is dropped, or marked as general knowledge), and the extractive answer
that quotes the sources' best sentences when the model's text cannot be verified."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ingest.instructions import addresses_assistant
from knowledge.core.text import content_words, overlap, split_sentences
from knowledge.core.types import Chunk
from knowledge.search.embeddings import Embedder

GENERAL_MARK = " _(general knowledge, not from the knowledge base)_"


SUPPORT_THRESHOLD = 0.45  # share of a sentence's content words found in the passage it cites


_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def trim_passage(text: str, query: str, max_chars: int) -> str:
    """The sentences of a passage that matter most for the query, in their original order."""
    if len(text) <= max_chars:
        return text
    sentences = split_sentences(text)
    query_words = content_words(query)
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-len(content_words(sentences[i]) & query_words), i),
    )
    chosen: list[int] = []
    used = 0
    for i in ranked:
        cost = len(sentences[i]) + 1
        if used + cost > max_chars:
            continue
        chosen.append(i)
        used += cost
    if not chosen:
        return text[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return " ".join(sentences[i] for i in sorted(chosen))


def strip_citations(text: str) -> str:
    return re.sub(r"\s*" + _CITATION.pattern, "", text).strip()  # "year [1]." -> "year."


def _cited_numbers(sentence: str) -> list[int]:
    return [int(n) for group in _CITATION.findall(sentence) for n in group.split(",")]


@dataclass
class VerifiedText:
    text: str
    cited: list[int] = field(default_factory=list)  # source numbers, in order of first use
    supported: bool = False
    claims: dict[int, list[str]] = field(default_factory=dict)  # source number -> its sentences


def locate_page(chunk: Chunk, claims: Sequence[str]) -> int:
    """The page of a two-page chunk that holds more of what the claims say."""
    if chunk.page_break is None:
        return chunk.page_start
    words = content_words(" ".join(claims))
    first = len(words & content_words(chunk.text[: chunk.page_break]))
    second = len(words & content_words(chunk.text[chunk.page_break :]))
    return chunk.page_end if second > first else chunk.page_start


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def figures(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(strip_citations(text))}


@dataclass(frozen=True)
class _Passage:
    words: set[str]
    numbers: set[str]


def _support(claims: set[str], numbers: set[str], passage: _Passage) -> float:
    """How well a passage backs a sentence: its new words are there and no number is invented."""
    words = {w for w in claims if not w.isdigit()}
    if numbers - passage.numbers or len(words & passage.words) < 2:
        return 0.0
    return overlap(words, passage.words)


def verify_citations(
    answer: str, passages: Sequence[str], question: str = "", *, allow_general: bool = False
) -> VerifiedText:
    """Keep citations only where the cited passage supports the sentence, cite the best passage
    where the model forgot to, and drop factual sentences no passage supports (or, with
    ``allow_general``, keep them marked as general knowledge, not from the knowledge base).

    Words the question already contains do not count as support: a model that only echoes the
    question ("The hotel limit per night is 2") has said nothing the sources back."""
    sources = [_Passage(content_words(p), figures(p)) for p in passages]
    asked = content_words(question)
    out: list[str] = []
    cited: list[int] = []
    claimed: dict[int, list[str]] = {}
    for sentence in split_sentences(answer):
        bare = strip_citations(sentence)
        if not bare:
            continue
        claims = content_words(bare) - asked
        numbers = figures(bare)
        support = [_support(claims, numbers, p) for p in sources]
        best = max(support, default=0.0)
        keep = [n for n in _cited_numbers(sentence) if 1 <= n <= len(sources)]
        keep = [n for n in dict.fromkeys(keep) if support[n - 1] >= SUPPORT_THRESHOLD]
        if not keep and best >= SUPPORT_THRESHOLD:
            keep = [support.index(best) + 1]
        is_claim = len(claims) >= 3 or bool(numbers)
        if is_claim and not keep:
            if allow_general:
                out.append(bare + GENERAL_MARK)
            continue  # an unsupported claim: never shown as if it came from the sources
        cited.extend(n for n in keep if n not in cited)
        for n in keep:
            claimed.setdefault(n, []).append(bare)
        out.append(_join_marks(bare, "".join(f"[{n}]" for n in keep)))
    return VerifiedText(" ".join(out), cited, bool(cited), claimed)


def _join_marks(sentence: str, marks: str) -> str:
    if not marks:
        return sentence
    if sentence[-1:] in ".!?":
        return f"{sentence[:-1]} {marks}{sentence[-1]}"
    return f"{sentence} {marks}"


Scorer = Callable[[str, Sequence[str]], Sequence[float]]


def keyword_scorer(question: str, sentences: Sequence[str]) -> list[float]:
    """Question-word overlap weighted by rarity among the candidate sentences (IDF)."""
    bags = [content_words(x) for x in sentences]
    count = len(bags)
    asked = content_words(question)
    idf = {w: math.log(1 + count / (1 + sum(w in b for b in bags))) for w in asked}
    return [sum(idf[w] for w in asked & bag) for bag in bags]


_LEADING_NUMBER = re.compile(
    r"^\s*(?:[-•*]|\(?[0-9ivxlc]{1,4}[.)]|[0-9]+(?:\.[0-9]+)+\.?|[a-z][.)])\s+"
)


QUOTE_MIN_WORDS = 6


def quotable(sentence: str) -> str:
    """A sentence as it is quoted: without the heading or list number before it ("2.1 ",
    "(a) ", "• "); empty when what is left is not a sentence (a heading, a fragment) or talks
    to the assistant instead of the reader."""
    text = _LEADING_NUMBER.sub("", sentence.strip()).strip()
    if len(text.split()) < QUOTE_MIN_WORDS or addresses_assistant(text):
        return ""
    return text


def extractive_answer(
    question: str,
    passages: Sequence[str],
    limit: int = 2,
    scorer: Scorer = keyword_scorer,
    sentence_scores: Sequence[dict[str, float]] | None = None,
) -> VerifiedText:
    """The sentences of the sources that best answer the question, quoted and cited.
    ``sentence_scores``: per passage, the question's similarity to its sentences where
    retrieval already has it (else ``scorer`` computes one)."""
    candidates = [
        (n, sentence, quoted)
        for n, passage in enumerate(passages, start=1)
        for sentence in split_sentences(passage)
        if (quoted := quotable(sentence))
    ]
    if not candidates:
        return VerifiedText("", [], False)
    known = sentence_scores or []
    if (
        known
        and all(sentence in known[n - 1] for n, sentence, _ in candidates if n <= len(known))
        and len(known) == len(passages)
    ):
        keyword = keyword_scorer(question, [q for _, _, q in candidates])
        top = max(keyword) or 1.0
        scores = [
            known[n - 1][sentence] + 0.1 * k / top
            for (n, sentence, _), k in zip(candidates, keyword, strict=True)
        ]
    else:
        scores = list(scorer(question, [q for _, _, q in candidates]))
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    best = scores[order[0]]
    picked = [candidates[i] for i in order[:limit] if scores[i] >= 0.8 * best]
    picked.sort(key=lambda c: (c[0], candidates.index(c)))  # in the sources' order
    text = " ".join(_join_marks(quoted.rstrip(), f"[{n}]") for n, _, quoted in picked)
    cited = list(dict.fromkeys(n for n, _, _ in picked))
    claims: dict[int, list[str]] = {}
    for n, _, quoted in picked:
        claims.setdefault(n, []).append(quoted)
    return VerifiedText(text, cited, True, claims)


def without_instructions(text: str) -> str:
    """The passage with every sentence that addresses the assistant taken out."""
    if not addresses_assistant(text):
        return text
    return " ".join(x for x in split_sentences(text) if not addresses_assistant(x))


def embedding_scorer(embedder: Embedder) -> Scorer:
    def score(question: str, sentences: Sequence[str]) -> list[float]:
        vectors = embedder.embed_documents([question, *sentences])
        keyword = keyword_scorer(question, sentences)
        top = max(keyword) or 1.0
        # meaning first; rare shared words break near-ties
        return [
            float(v @ vectors[0]) + 0.1 * k / top for v, k in zip(vectors[1:], keyword, strict=True)
        ]

    return score


def claim_count(text: str) -> int:
    """How many sentences of a text state something (three content words or a number)."""
    count = 0
    for sentence in split_sentences(text):
        bare = strip_citations(sentence).replace(GENERAL_MARK.strip(), "")
        if len(content_words(bare)) >= 3 or figures(bare):
            count += 1
    return count
