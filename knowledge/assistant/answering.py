"""Grounded answers: retrieve, weigh the evidence, prompt, stream, verify every citation."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ingest.instructions import addresses_assistant
from knowledge.assistant.chat import ChatModel, Message
from knowledge.assistant.evidence import EvidenceJudge
from knowledge.assistant.personas import Persona, Turn
from knowledge.core.errors import ModelUnavailableError
from knowledge.core.text import content_words, overlap, split_sentences
from knowledge.core.types import Answer, AnswerStream, Chunk, Citation, Evidence, ScoredChunk
from knowledge.search.embeddings import Embedder
from knowledge.search.retrieval import Retriever

NOT_FOUND = "I could not find this in the knowledge base."
GENERAL_MARK = " _(general knowledge, not from the knowledge base)_"
SUPPORT_THRESHOLD = 0.45  # share of a sentence's content words found in the passage it cites

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_FOLLOW_UP = re.compile(
    r"^(and|but|what about|how about|also|then|so)\b|\b(it|its|they|them|their|this|that|these|"
    r"those|he|she|his|her|there)\b",
    re.IGNORECASE,
)


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """Make a follow-up searchable on its own by carrying over the previous question's topic."""
    question = question.strip()
    if not history:
        return question
    words = question.split()
    if len(words) <= 6 or _FOLLOW_UP.search(question):
        # one question, not two parts: the follow-up asks about the previous one's topic
        previous = history[-1].question.strip().rstrip("?.!;: ")
        return f"{previous}, {question[:1].lower()}{question[1:]}"
    return question


def evidence_level(top_score: float, abstain_below: float, weak_below: float) -> Evidence:
    if top_score < abstain_below:
        return "none"
    return "weak" if top_score < weak_below else "strong"


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


def build_messages(
    question: str,
    passages: Sequence[str],
    persona: Persona,
    history: Sequence[Turn] = (),
) -> list[Message]:
    sources = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(passages, start=1))
    messages: list[Message] = [{"role": "system", "content": persona.system_prompt}]
    for turn in history[-2:]:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": _strip_citations(turn.answer)[:300]})
    messages.append(
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}\nAnswer:"}
    )
    return messages


def _strip_citations(text: str) -> str:
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


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(_strip_citations(text))}


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
    sources = [_Passage(content_words(p), _numbers(p)) for p in passages]
    asked = content_words(question)
    out: list[str] = []
    cited: list[int] = []
    claimed: dict[int, list[str]] = {}
    for sentence in split_sentences(answer):
        bare = _strip_citations(sentence)
        if not bare:
            continue
        claims = content_words(bare) - asked
        numbers = _numbers(bare)
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


def is_looping(text: str) -> bool:
    """Degenerate output: the last few hundred characters keep repeating the same few tokens."""
    tokens = re.findall(r"\S+", re.sub(r"\d+", "#", text[-400:]))
    return len(tokens) >= 40 and len(set(tokens)) / len(tokens) < 0.25


_SOURCES = r"(?:the\s+)?(?:sources?|knowledge base|documents?|context|passages?)"
_NOT_ANSWERED = re.compile(
    _SOURCES + r"\s+(?:do(?:es)?\s+not|don't|doesn't)\s+"
    r"(?:answer|cover|contain|mention|say|address|include|provide|specify|state)"
    r"|\b(?:not|isn't|is not)\s+(?:covered|mentioned|addressed|answered|specified|stated)"
    r"\s+(?:in|by)\s+" + _SOURCES + r"|\bno\s+information\s+(?:about|on|regarding)\b"
    r"|\b(?:i\s+)?(?:could|can)(?:\s*not|n't)\s+find\b",
    re.IGNORECASE,
)


def says_not_answered(text: str) -> bool:
    """Whether the model's reply says that the sources do not answer the question."""
    return bool(_NOT_ANSWERED.search(_strip_citations(text)[:400]))


class Assistant:
    """``judge`` weighs the evidence (without one: the best passage's cosine against the
    thresholds); ``abstain_below`` / ``weak_below`` override the judge's operating point."""

    def __init__(
        self,
        retriever: Retriever,
        model: ChatModel,
        *,
        top_k: int = 5,
        prompt_sources: int = 4,
        source_chars: int = 450,
        abstain_below: float | None = None,
        weak_below: float | None = None,
        judge: EvidenceJudge | None = None,
    ) -> None:
        self.retriever = retriever
        self.model = model
        self.top_k = top_k
        self.prompt_sources = prompt_sources
        self.source_chars = source_chars
        self.abstain_below = abstain_below
        self.weak_below = weak_below
        self.judge = judge

    def ask(
        self,
        question: str,
        collections: Sequence[str],
        *,
        history: Sequence[Turn] = (),
        persona: Persona | None = None,
        doc_ids: Sequence[str] | None = None,
    ) -> AnswerStream:
        """``doc_ids``: answer from these documents only (a metadata filter; [] finds none)."""
        persona = persona or Persona()
        started = time.perf_counter()
        query = standalone_query(question, history)
        sources = self.retriever.search(query, collections, self.top_k, doc_ids=doc_ids)
        answer = Answer(
            question=question,
            text="",
            abstained=False,
            model=self.model.name,
            sources=sources,
            standalone_query=query,
            retrieval_ms=(time.perf_counter() - started) * 1000,
        )
        answer.evidence = self._weigh(answer, query, collections)
        if answer.evidence == "none":
            return AnswerStream(self._abstain(answer, started), answer)
        if persona.answer_policy == "quote_only":
            return AnswerStream(self._quote(answer, query, started), answer)
        return AnswerStream(self._generate(answer, query, history, persona, started), answer)

    def _weigh(self, answer: Answer, query: str, collections: Sequence[str]) -> Evidence:
        if not answer.sources:
            return "none"
        if self.judge is None:
            top = max(s.score for s in answer.sources)
            return evidence_level(top, self.abstain_below or 0.45, self.weak_below or 0.52)
        probability, signals = self.judge.judge(query, answer.sources, collections)
        answer.confidence = round(probability, 4)
        answer.signals = signals.as_dict()
        return self.judge.model.level(probability, self.abstain_below, self.weak_below)

    def _quote(self, answer: Answer, query: str, started: float) -> Iterator[str]:
        """The sources' own words only: the sentences that best answer, quoted and cited."""
        answer.model = "quotes from the sources"
        used = answer.sources[: self.prompt_sources]
        verified = self._extract(query, used)
        passages = [trim_passage(s.chunk.text, query, self.source_chars) for s in used]
        self._finish(answer, verified, used, passages, started)
        yield answer.text

    def _extract(self, query: str, used: Sequence[ScoredChunk]) -> VerifiedText:
        """The best-answering sentences of the sources, by the sentence similarities that
        retrieval computed (the embedder scores any it did not)."""
        known = [_sentence_scores(s) for s in used]
        return extractive_answer(
            query,
            [s.chunk.text for s in used],
            scorer=embedding_scorer(self.retriever.embedder),
            sentence_scores=known if all(known) else None,
        )

    def _abstain(self, answer: Answer, started: float) -> Iterator[str]:
        answer.abstained = True
        answer.text = NOT_FOUND
        answer.total_ms = (time.perf_counter() - started) * 1000
        yield NOT_FOUND

    def _generate(
        self,
        answer: Answer,
        query: str,
        history: Sequence[Turn],
        persona: Persona,
        started: float,
    ) -> Iterator[str]:
        used = answer.sources[: self.prompt_sources]
        passages = [
            trim_passage(without_instructions(s.chunk.text), query, self.source_chars) for s in used
        ]
        messages = build_messages(answer.question, passages, persona, history)
        pieces: list[str] = []
        try:
            for delta in self.model.stream(
                messages, temperature=persona.temperature, max_tokens=persona.max_tokens
            ):
                if answer.first_token_ms is None:
                    answer.first_token_ms = (time.perf_counter() - started) * 1000
                pieces.append(delta)
                yield delta
                if is_looping("".join(pieces[-80:])):
                    break  # small models can repeat themselves until the token limit
        except ModelUnavailableError as exc:
            answer.error = str(exc)
        reply = "".join(pieces)
        general = persona.answer_policy == "general_knowledge"
        verified = verify_citations(reply, passages, answer.question, allow_general=general)
        if not answer.error and judges_sources(self.model) and says_not_answered(reply):
            # a capable model read the sources and says they do not answer: believe it, and
            # show the closest passages instead of quotes that would look like an answer
            answer.verdict = "model"
            answer.evidence = "none"
            answer.citations = []
            answer.abstained = True
            answer.text = NOT_FOUND
            answer.total_ms = (time.perf_counter() - started) * 1000
            return
        answer.dropped = _claims(reply) - _claims(verified.text)
        if answer.error or not (verified.supported or (general and verified.text)):
            # Small local models often answer off the sources, and a broken-off answer may end
            # mid-claim: either way the evidence itself must be what the user sees.
            verified = self._extract(query, used)
            answer.quoted = True
            passages = [trim_passage(s.chunk.text, query, self.source_chars) for s in used]
        self._finish(answer, verified, used, passages, started)

    def _finish(
        self,
        answer: Answer,
        verified: VerifiedText,
        used: Sequence[ScoredChunk],
        passages: Sequence[str],
        started: float,
    ) -> None:
        answer.text = verified.text or NOT_FOUND
        answer.abstained = not verified.text
        answer.citations = [
            Citation(
                n=n,
                chunk=used[n - 1].chunk,
                score=used[n - 1].score,
                quote=passages[n - 1],
                page=locate_page(used[n - 1].chunk, verified.claims.get(n, [])),
            )
            for n in verified.cited
        ]
        answer.total_ms = (time.perf_counter() - started) * 1000


def judges_sources(model: ChatModel) -> bool:
    """Whether the model is capable enough to be believed when it says the sources do not
    answer (a served model, not the embedded demo model)."""
    return bool(getattr(model, "judges_sources", False))


def _claims(text: str) -> int:
    """How many sentences of a text state something (three content words or a number)."""
    count = 0
    for sentence in split_sentences(text):
        bare = _strip_citations(sentence).replace(GENERAL_MARK.strip(), "")
        if len(content_words(bare)) >= 3 or _numbers(bare):
            count += 1
    return count


def _sentence_scores(source: ScoredChunk) -> dict[str, float]:
    """A source's sentence similarities by sentence text (as ``split_sentences`` gives it)."""
    chunk = source.chunk
    if not source.sentence_scores or len(source.sentence_scores) != len(chunk.sentences):
        return {}
    return {
        " ".join(chunk.text[a:b].split()): score
        for (a, b), score in zip(chunk.sentences, source.sentence_scores, strict=True)
    }
