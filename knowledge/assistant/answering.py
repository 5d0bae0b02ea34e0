"""Grounded answers: retrieve, weigh the evidence, prompt, stream, verify every citation."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence

from knowledge.assistant.chat import ChatModel, Message
from knowledge.assistant.citations import (
    VerifiedText,
    claim_count,
    embedding_scorer,
    extractive_answer,
    locate_page,
    strip_citations,
    trim_passage,
    verify_citations,
    without_instructions,
)
from knowledge.assistant.context import (
    DEFAULT_WINDOW,
    context_window,
    fit_history,
    history_budget,
)
from knowledge.assistant.evidence import EvidenceJudge
from knowledge.assistant.followups import model_rewrite, rewrites_queries
from knowledge.assistant.personas import Persona, Turn
from knowledge.core.errors import ModelUnavailableError
from knowledge.core.types import Answer, AnswerStream, Citation, Evidence, ScoredChunk
from knowledge.search.retrieval import Retriever

NOT_FOUND = "I could not find this in the knowledge base."

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


def build_messages(
    question: str,
    passages: Sequence[str],
    persona: Persona,
    history: Sequence[Turn] = (),
    *,
    window: int = DEFAULT_WINDOW,
) -> list[Message]:
    """The prompt: the persona, the conversation fitted into what the window leaves (older
    turns summarised in the system message), the numbered sources and the question."""
    sources = "\n\n".join(f"[{n}] {text}" for n, text in enumerate(passages, start=1))
    ask = f"Sources:\n{sources}\n\nQuestion: {question}\nAnswer:"
    budget = history_budget(window, persona.max_tokens, persona.system_prompt + ask)
    fitted = fit_history(history, budget)
    system = persona.system_prompt + (f"\n\n{fitted.summary}" if fitted.summary else "")
    messages: list[Message] = [{"role": "system", "content": system}]
    for turn in fitted.recent:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.answer})
    messages.append({"role": "user", "content": ask})
    return messages


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
    return bool(_NOT_ANSWERED.search(strip_citations(text)[:400]))


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
        rewrite_followups: bool = True,
    ) -> None:
        self.retriever = retriever
        self.model = model
        self.top_k = top_k
        self.prompt_sources = prompt_sources
        self.source_chars = source_chars
        self.abstain_below = abstain_below
        self.weak_below = weak_below
        self.judge = judge
        self.rewrite_followups = rewrite_followups

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
        query = self.searchable(question, history)
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

    def searchable(self, question: str, history: Sequence[Turn]) -> str:
        """The query to search for: a follow-up rewritten by a capable model (when enabled),
        else made standalone by the word heuristic."""
        if history and self.rewrite_followups and rewrites_queries(self.model):
            rewritten = model_rewrite(self.model, question, history)
            if rewritten:
                return rewritten
        return standalone_query(question, history)

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
        window = context_window(self.model)
        messages = build_messages(answer.question, passages, persona, history, window=window)
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
        answer.dropped = claim_count(reply) - claim_count(verified.text)
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


def _sentence_scores(source: ScoredChunk) -> dict[str, float]:
    """A source's sentence similarities by sentence text (as ``split_sentences`` gives it)."""
    chunk = source.chunk
    if not source.sentence_scores or len(source.sentence_scores) != len(chunk.sentences):
        return {}
    return {
        " ".join(chunk.text[a:b].split()): score
        for (a, b), score in zip(chunk.sentences, source.sentence_scores, strict=True)
    }
