"""Chat models behind one small interface, so answering code never sees a client library.

``build_chat_model(settings)`` returns a model for the configured backend: a local Ollama
server, any OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio ...), or llama.cpp
running inside this process on a GGUF file (SmolLM2-135M by default). ``model.stream(...)`` yields
text deltas and turns every failure into ``ModelUnavailableError`` with a message for users.
The backend's token counts and timings, when it reports them, go into the ``usage`` dict the
caller passes in: they belong to that one answer, never to the model that several sessions share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, cast

from knowledge.assistant.embedded import EmbeddedChatModel, resolve_gguf
from knowledge.core.errors import ModelUnavailableError, SettingsError, model_timeout
from knowledge.core.settings import Settings
from knowledge.core.types import Message, Usage  # also imported from here, with the interface

BACKENDS = ("auto", "ollama", "openai", "embedded")


class ChatModel(Protocol):
    @property
    def name(self) -> str: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        """The reply's text deltas; once the stream has ended, ``usage`` (when given) holds
        what the backend reported about this request (nothing when it reports nothing)."""
        ...


def build_chat_model(
    settings: Settings, *, backend: str | None = None, model: str | None = None
) -> ChatModel:
    """The chat model for ``backend`` (default: ``settings.model_backend``).

    ``model`` overrides the Ollama or OpenAI model name, or the GGUF path for ``embedded``.
    ``auto`` uses Ollama when it answers, else the embedded model (``model`` then only applies to
    Ollama)."""
    choice = backend or settings.model_backend
    if choice == "auto":
        available = ollama_models(settings.ollama_host, settings.connect_timeout_s)
        # an Ollama without the configured model would fail every answer: use the embedded one
        if available is not None and _has_model(available, model or settings.ollama_model):
            choice = "ollama"
        else:
            choice, model = "embedded", None
    if choice == "ollama":
        return OllamaChatModel(
            settings.ollama_host,
            model or settings.ollama_model,
            timeout_s=settings.model_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            context=settings.ollama_context,
        )
    if choice == "openai":
        return OpenAIChatModel(
            settings.openai_base_url,
            model or settings.openai_model,
            api_key=settings.openai_api_key,
            timeout_s=settings.model_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            context=settings.openai_context,
        )
    if choice == "embedded":
        return EmbeddedChatModel(
            resolve_gguf(model or settings.gguf_path),
            context=settings.embedded_context,
            threads=settings.embedded_threads,
            timeout_s=settings.model_timeout_s,
        )
    raise SettingsError(
        f"Unknown model backend {choice!r} (KDESK_MODEL_BACKEND): use one of {', '.join(BACKENDS)}."
    )


def ollama_models(host: str, timeout: float) -> list[str] | None:
    """The models an Ollama server at ``host`` has pulled, or None when it does not answer."""
    import ollama

    try:
        with ollama.Client(host=host, timeout=timeout) as client:
            listing = client.list()
    except Exception:
        return None
    return [m.model for m in listing.models if m.model]


def ollama_reachable(host: str, timeout: float) -> bool:
    """Whether an Ollama server answers at ``host`` within ``timeout`` seconds."""
    return ollama_models(host, timeout) is not None


def _has_model(available: list[str], wanted: str) -> bool:
    names = {wanted, wanted if ":" in wanted else f"{wanted}:latest"}
    return any(name in names for name in available)


class OllamaChatModel:
    judges_sources = True  # believed when it says the sources do not answer
    rewrites_queries = True  # turns a follow-up into a standalone search query

    def __init__(
        self,
        host: str,
        model: str,
        *,
        timeout_s: float,
        connect_timeout_s: float,
        context: int = 4096,
    ) -> None:
        import httpx
        import ollama

        self.host = host
        self.model = model
        self.context_window = context  # sent as num_ctx, so the window is what we assume
        self.timeout_s = timeout_s
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._client = ollama.Client(host=host, timeout=timeout)

    @property
    def name(self) -> str:
        return f"ollama · {self.model}"

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        import httpx
        import ollama

        finished = False
        options = {
            "temperature": temperature,
            "num_predict": max_tokens,
            "num_ctx": self.context_window,
        }
        try:
            parts = self._client.chat(self.model, list(messages), stream=True, options=options)
            for part in parts:
                if part.message.content:
                    yield part.message.content
                if part.done:
                    finished = True
                    if usage is not None:
                        usage.update(_ollama_usage(part))
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(exc) from exc
        if not finished:
            raise ModelUnavailableError(
                f"Ollama at {self.host} stopped in the middle of the answer."
            )

    def _unavailable(self, exc: Exception) -> ModelUnavailableError:
        import httpx
        import ollama

        where = f"Ollama at {self.host}"
        if isinstance(exc, ollama.ResponseError) and _model_missing(exc):
            return ModelUnavailableError(
                f"{where} does not have the model '{self.model}'. Run `ollama pull {self.model}` "
                "there, or choose another model (KDESK_OLLAMA_MODEL)."
            )
        if isinstance(exc, ollama.ResponseError):
            status = f" (HTTP {exc.status_code})" if exc.status_code > 0 else ""
            return ModelUnavailableError(f"{where} failed to answer{status}: {exc.error}")
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return ModelUnavailableError(
                f"Cannot reach {where}. Start it with `ollama serve`, or check KDESK_OLLAMA_HOST."
            )
        if isinstance(exc, httpx.TimeoutException):
            return model_timeout(where, self.timeout_s)
        if isinstance(exc, httpx.HTTPError):
            return ModelUnavailableError(f"The connection to {where} broke off mid-answer.")
        return ModelUnavailableError(f"{where} sent a reply that could not be read: {exc}")


def _model_missing(exc: Any) -> bool:
    return exc.status_code == 404 and "model" in str(exc.error).lower()


def _ollama_usage(part: Any) -> Usage:
    return {
        "prompt_tokens": part.prompt_eval_count or 0,
        "completion_tokens": part.eval_count or 0,
        "prompt_ms": (part.prompt_eval_duration or 0) / 1e6,
        "completion_ms": (part.eval_duration or 0) / 1e6,
    }


class OpenAIChatModel:
    judges_sources = True
    rewrites_queries = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str,
        timeout_s: float,
        connect_timeout_s: float,
        context: int = 8192,
    ) -> None:
        import openai

        self.base_url = base_url
        self.model = model
        self.context_window = context  # the served model's, as configured (KDESK_OPENAI_CONTEXT)
        self.timeout_s = timeout_s
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=0,
        )

    @property
    def name(self) -> str:
        return f"openai · {self.model}"

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
        import httpx
        import openai

        started = finished = False
        try:
            chunks = self._client.chat.completions.create(
                model=self.model,
                messages=cast(list[Any], list(messages)),
                temperature=temperature,
                max_tokens=max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            for chunk in chunks:
                if chunk.usage and usage is not None:
                    usage["prompt_tokens"] = chunk.usage.prompt_tokens
                    usage["completion_tokens"] = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        started = True
                        yield choice.delta.content
                    finished = finished or choice.finish_reason is not None
        # a stream that breaks off raises httpx errors straight through the SDK
        except (openai.OpenAIError, httpx.HTTPError) as exc:
            raise self._unavailable(exc, midway=started) from exc
        if not finished:
            raise ModelUnavailableError(
                f"The model server at {self.base_url} stopped in the middle of the answer."
            )

    def _unavailable(self, exc: Exception, *, midway: bool) -> ModelUnavailableError:
        import httpx
        import openai

        server = f"model server at {self.base_url}"
        where = f"The {server}"
        if isinstance(exc, openai.APITimeoutError):
            return model_timeout(where, self.timeout_s)
        if isinstance(exc, openai.APIConnectionError) and midway:
            return ModelUnavailableError(f"The connection to the {server} broke off mid-answer.")
        if isinstance(exc, openai.APIConnectionError):
            return ModelUnavailableError(
                f"Cannot reach the {server}: is it running? Check KDESK_OPENAI_BASE_URL."
            )
        if isinstance(exc, openai.NotFoundError):
            return ModelUnavailableError(
                f"{where} has no model '{self.model}' ({_detail(exc)}). "
                "Check KDESK_OPENAI_MODEL and KDESK_OPENAI_BASE_URL (it usually ends in /v1)."
            )
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ModelUnavailableError(f"{where} refused the API key (KDESK_OPENAI_API_KEY).")
        if isinstance(exc, openai.APIStatusError):
            return ModelUnavailableError(
                f"{where} failed to answer (HTTP {exc.status_code}): {_detail(exc)}"
            )
        if isinstance(exc, httpx.TimeoutException):
            return model_timeout(where, self.timeout_s)
        if isinstance(exc, httpx.TransportError):
            return ModelUnavailableError(f"The connection to the {server} broke off mid-answer.")
        return ModelUnavailableError(f"{where} failed while answering: {_detail(exc)}")


def _detail(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(exc)
