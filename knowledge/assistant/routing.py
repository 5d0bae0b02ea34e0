"""Model routing: a fast and a strong model, and which one answers a question.

``KDESK_FAST_MODEL`` / ``KDESK_STRONG_MODEL`` name a model each as ``BACKEND:MODEL[@URL]``
("ollama:llama3.2:3b", "openai:qwen2.5-32b@http://gpu:8000/v1", "embedded"). With neither set,
the desk's one model is both and routing is a no-op, recorded as route "single". A persona's
``route`` rule ("fast", "strong", "auto") chooses for its role; "auto" scores the question and
its evidence (``estimate_difficulty``) and takes the strong model from ``KDESK_ROUTE_STRONG_AT``
points. When the strong model is down before it said anything, the fast one answers and the
answer says so. Every answer records its route and why (``Answer.route``, ``route_reason``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from knowledge.assistant.chat import BACKENDS, ChatModel, build_chat_model
from knowledge.assistant.personas import ROUTE_RULES, Persona
from knowledge.core.errors import ModelUnavailableError, SettingsError
from knowledge.core.settings import Settings
from knowledge.core.types import Answer, Message, Usage

Route = Literal["fast", "strong", "single", "persona"]
FALLBACK_NOTE = "The strong model is unavailable; answered by the fast model."

_PART = re.compile(
    r"\?\s*\S|;\s*\S|\b(?:compare|comparison|difference between|versus|vs\.?|as well as|"
    r"both|each of|respectively)\b|,?\s+and\s+(?:who|what|when|where|how|which|why|whether)\b"
    r"|(?:^|\s)(?:\(?[1-9][).]|[a-e]\))\s",
    re.IGNORECASE,
)
_TOOL = re.compile(
    r"\b(?:calculate|compute|how many (?:days|weeks|months|hours) (?:between|from|until|since)|"
    r"sum of|total of|add up|"
    r"convert|percent(?:age)? of|average of|multiply|divide)\b|\d\s*[-+*/×]\s*\d",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Difficulty:
    """The score of a question and its evidence, with the reason for each point."""

    score: int
    reasons: tuple[str, ...]


def question_parts(question: str) -> int:
    """How many parts a question has (1 + the markers of further parts it holds)."""
    return 1 + len(_PART.findall(question.strip()))


def estimate_difficulty(
    answer: Answer, *, long_words: int = 25, spread_docs: int = 3
) -> Difficulty:
    """One point each: a long question, a question in several parts, evidence spread over
    ``spread_docs`` or more documents among the top passages, weak evidence, a question that
    needs a tool (a calculation)."""
    question = answer.question
    reasons: list[str] = []
    words = len(question.split())
    if words >= long_words:
        reasons.append(f"long question ({words} words)")
    if (parts := question_parts(question)) > 1:
        reasons.append(f"{parts} parts")
    documents = {s.chunk.doc_id for s in answer.sources[:5]}
    if len(documents) >= spread_docs:
        reasons.append(f"evidence spread over {len(documents)} documents")
    if answer.evidence == "weak":
        reasons.append("weak evidence")
    if _TOOL.search(question):
        reasons.append("a tool is needed (a calculation)")
    return Difficulty(len(reasons), tuple(reasons))


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: str


def decide(persona: Persona, answer: Answer, *, routed: bool, strong_at: int) -> Decision:
    """Which model answers: the persona's own, the one model, the role's rule, or the score."""
    if persona.model:
        return Decision("persona", f"the persona's own model ({persona.model})")
    if not routed:
        return Decision("single", "one model configured (routing off)")
    rule = persona.route if persona.route in ROUTE_RULES else "auto"
    if rule != "auto":
        return Decision(rule, f"role rule: {rule}")  # type: ignore[arg-type]
    difficulty = estimate_difficulty(answer)
    why = "; ".join(difficulty.reasons) or "short question, strong evidence"
    route: Route = "strong" if difficulty.score >= strong_at else "fast"
    return Decision(route, f"auto: score {difficulty.score} ({why})")


def parse_spec(spec: str) -> tuple[str, str, str]:
    """``BACKEND:MODEL[@URL]`` -> (backend, model, url); a bare name is a model of the
    configured backend ("llama3.2:3b" is a model name, not a backend)."""
    spec, _, url = spec.strip().partition("@")
    backend, _, name = spec.partition(":")
    if backend not in BACKENDS:
        backend, name = "", spec
    return backend, name, url


def build_spec_model(settings: Settings, spec: str) -> ChatModel:
    backend, name, url = parse_spec(spec)
    if url:
        kind = backend or settings.model_backend
        field = {"ollama": "ollama_host", "openai": "openai_base_url"}.get(kind)
        if field is None:
            raise SettingsError(f"A URL ({url}) needs the ollama or openai backend: {spec!r}.")
        settings = settings.model_copy(update={field: url})
    return build_chat_model(settings, backend=backend or None, model=name or None)


class ModelRouter:
    """Builds the fast and strong models once (``model_for`` gives the desk's own and the
    personas' models) and gives each question a ``RoutedModel``."""

    def __init__(
        self,
        settings: Settings,
        model_for: Callable[[str], ChatModel],
        *,
        fast: ChatModel | None = None,
        strong: ChatModel | None = None,
    ) -> None:
        self.settings = settings
        self.model_for = model_for
        self._fast = fast
        self._strong = strong
        self._lock = threading.Lock()

    @property
    def routed(self) -> bool:
        s = self.settings
        return bool(s.fast_model or s.strong_model or self._fast or self._strong)

    def _built(self, spec: str, given: ChatModel | None) -> ChatModel:
        if given is not None:
            return given
        if not spec:
            return self.model_for("")
        return build_spec_model(self.settings, spec)

    @property
    def fast(self) -> ChatModel:
        with self._lock:
            if self._fast is None:
                self._fast = self._built(self.settings.fast_model, None)
            return self._fast

    @property
    def strong(self) -> ChatModel:
        with self._lock:
            if self._strong is None:
                self._strong = self._built(self.settings.strong_model, None)
            return self._strong

    def model(self, persona: Persona) -> RoutedModel:
        """A chat model for one question of ``persona``; it chooses in ``decide_for``."""
        return RoutedModel(self, persona)


class RoutedModel:
    """One question's model: the answering code calls ``decide_for(answer)`` once the evidence
    is known, then streams; the choice, its reason and a fallback land in the answer."""

    def __init__(self, router: ModelRouter, persona: Persona) -> None:
        self.router = router
        self.persona = persona
        self.decision: Decision | None = None
        self.answer: Answer | None = None

    @property
    def chosen(self) -> ChatModel:
        d, r = self.decision, self.router
        if self.persona.model:
            return r.model_for(self.persona.model)
        if d is None or d.route == "single":
            return r.model_for("") if not r.routed else r.fast
        return r.strong if d.route == "strong" else r.fast

    @property
    def name(self) -> str:
        return self.chosen.name

    @property
    def judges_sources(self) -> bool:
        return bool(getattr(self.chosen, "judges_sources", False))

    def decide_for(self, answer: Answer) -> None:
        strong_at = self.router.settings.route_strong_at
        self.decision = decide(self.persona, answer, routed=self.router.routed, strong_at=strong_at)
        self.answer = answer
        answer.route, answer.route_reason = self.decision.route, self.decision.reason
        answer.model = self.name

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        said = False
        try:
            for delta in self.chosen.stream(
                messages, temperature=temperature, max_tokens=max_tokens, usage=usage
            ):
                said = True
                yield delta
            return
        except ModelUnavailableError as exc:
            if said or self.decision is None or self.decision.route != "strong":
                raise
            self._fell_back(exc)
        yield from self.router.fast.stream(
            messages, temperature=temperature, max_tokens=max_tokens, usage=usage
        )

    def _fell_back(self, exc: ModelUnavailableError) -> None:
        self.decision = Decision("fast", f"{self.decision.reason if self.decision else ''}")
        if self.answer is not None:
            answer = self.answer
            answer.route = "fast"
            answer.route_reason += f"; fallback: the strong model is unavailable ({exc})"
            answer.model = self.router.fast.name
            answer.notes.append(FALLBACK_NOTE)
