"""Chat model backends, through the real ollama / openai clients against local fake servers, and
the real embedded llama.cpp with the bundled SmolLM2."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knowledge.assistant.chat import (
    ChatModel,
    EmbeddedChatModel,
    Message,
    OllamaChatModel,
    OpenAIChatModel,
    Usage,
    build_chat_model,
    ollama_reachable,
)
from knowledge.core.errors import ModelUnavailableError, SettingsError
from knowledge.core.settings import Settings
from tests.fake_ollama import FakeOllama, count_words
from tests.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
REPLY = "Expense claims are due within 30 days [1]."
QUESTION: list[Message] = [
    {"role": "system", "content": "Answer from the sources only."},
    {"role": "user", "content": "When are expense claims due?"},
]


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama(REPLY) as server:
        yield server


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(REPLY) as server:
        yield server


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "model_backend": "ollama",
        "ollama_model": "llama3.2:3b",
        "openai_model": "served-model",
        "gguf_path": "",
        "model_timeout_s": 10.0,
        "connect_timeout_s": 1.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def answer(
    model: ChatModel, max_tokens: int = 100, temperature: float = 0.1, usage: Usage | None = None
) -> list[str]:
    return list(model.stream(QUESTION, temperature=temperature, max_tokens=max_tokens, usage=usage))


def failure(model: ChatModel) -> tuple[list[str], str]:
    """The deltas received before the model failed, and the error message."""
    received: list[str] = []
    with pytest.raises(ModelUnavailableError) as caught:
        for delta in model.stream(QUESTION, temperature=0.1, max_tokens=100):
            received.append(delta)
    return received, str(caught.value)


# Ollama


def test_ollama_streams_the_reply_in_several_deltas(ollama: FakeOllama, tmp_path: Path) -> None:
    model = build_chat_model(settings_for(tmp_path, ollama_host=ollama.url))
    deltas = answer(model)
    assert isinstance(model, OllamaChatModel)
    assert model.name == "ollama · llama3.2:3b"
    assert len(deltas) > 1
    assert "".join(deltas) == REPLY


def test_ollama_gets_the_prompt_model_temperature_and_token_limit(
    ollama: FakeOllama, tmp_path: Path
) -> None:
    model = build_chat_model(settings_for(tmp_path, ollama_host=ollama.url), model="qwen2.5:1.5b")
    deltas = answer(model, max_tokens=3, temperature=0.3)
    request = ollama.chats[-1]
    assert request["model"] == "qwen2.5:1.5b"
    assert request["messages"] == QUESTION
    assert request["stream"] is True
    assert request["options"]["temperature"] == 0.3
    assert request["options"]["num_predict"] == 3
    assert len(deltas) == 3
    assert model.name == "ollama · qwen2.5:1.5b"


def test_ollama_reports_usage_after_the_answer(ollama: FakeOllama, tmp_path: Path) -> None:
    model = OllamaChatModel(ollama.url, "llama3.2:3b", timeout_s=5, connect_timeout_s=1)
    usage: Usage = {}
    deltas = answer(model, usage=usage)
    assert usage["completion_tokens"] == len(deltas)
    assert usage["prompt_tokens"] == count_words(QUESTION)
    assert usage["prompt_ms"] > 0
    assert not hasattr(model, "last_usage"), "counts belong to the answer, not the shared model"
    assert answer(model) == deltas, "usage is optional"


def test_ollama_model_not_pulled_says_how_to_pull_it(tmp_path: Path) -> None:
    with FakeOllama(REPLY, models=["mistral:7b"]) as server:
        model = build_chat_model(settings_for(tmp_path, ollama_host=server.url))
        received, message = failure(model)
    assert received == []
    assert "`ollama pull llama3.2:3b`" in message


def test_ollama_server_down_fails_fast(tmp_path: Path) -> None:
    model = build_chat_model(settings_for(tmp_path, ollama_host=closed_port_url()))
    started = time.monotonic()
    _, message = failure(model)
    assert time.monotonic() - started < 2
    assert "Cannot reach Ollama" in message and "ollama serve" in message


def test_ollama_timeout_when_the_server_hangs(tmp_path: Path) -> None:
    with FakeOllama(REPLY, mode="hang") as server:
        model = build_chat_model(
            settings_for(tmp_path, ollama_host=server.url, model_timeout_s=0.3)
        )
        started = time.monotonic()
        _, message = failure(model)
    assert time.monotonic() - started < 3
    assert "did not answer within 0.3 s" in message


def test_ollama_slow_but_steady_stream_is_not_a_timeout(tmp_path: Path) -> None:
    with FakeOllama(REPLY, chunk_delay=0.1) as server:
        model = build_chat_model(
            settings_for(tmp_path, ollama_host=server.url, model_timeout_s=0.5)
        )
        assert "".join(answer(model)) == REPLY


def test_ollama_http_error_is_reported(tmp_path: Path) -> None:
    with FakeOllama(REPLY, mode="error") as server:
        model = build_chat_model(settings_for(tmp_path, ollama_host=server.url))
        _, message = failure(model)
    assert "HTTP 500" in message and "llama runner process has terminated" in message


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("drop", "broke off mid-answer"), ("error_midstream", "unexpected EOF")],
)
def test_ollama_failure_in_the_middle_of_the_stream(
    mode: str, expected: str, tmp_path: Path
) -> None:
    with FakeOllama(REPLY, mode=mode) as server:  # type: ignore[arg-type]
        model = build_chat_model(settings_for(tmp_path, ollama_host=server.url))
        received, message = failure(model)
    assert received and "".join(received) != REPLY
    assert expected in message


def test_ollama_reachable(ollama: FakeOllama, openai_server: FakeOpenAI) -> None:
    assert ollama_reachable(ollama.url, 1.0)
    assert not ollama_reachable(closed_port_url(), 1.0)
    assert not ollama_reachable(openai_server.url, 1.0)  # a web server, but not Ollama


# OpenAI-compatible servers


def test_openai_streams_through_the_real_client(openai_server: FakeOpenAI, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, openai_base_url=openai_server.url + "/v1")
    model = build_chat_model(settings, backend="openai")
    usage: Usage = {}
    deltas = answer(model, max_tokens=50, temperature=0.2, usage=usage)
    request = openai_server.chats[-1]
    assert isinstance(model, OpenAIChatModel)
    assert model.name == "openai · served-model"
    assert len(deltas) > 1 and "".join(deltas) == REPLY
    assert request["model"] == "served-model"
    assert request["messages"] == QUESTION
    assert request["temperature"] == 0.2 and request["max_tokens"] == 50
    assert usage == {"prompt_tokens": count_words(QUESTION), "completion_tokens": len(deltas)}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("not_found", "has no model 'served-model'"),
        ("error", "HTTP 500"),
        ("hang", "did not answer within 0.3 s"),
        ("drop", "broke off mid-answer"),
    ],
)
def test_openai_failures(mode: str, expected: str, tmp_path: Path) -> None:
    with FakeOpenAI(REPLY, mode=mode) as server:  # type: ignore[arg-type]
        settings = settings_for(tmp_path, openai_base_url=server.url + "/v1", model_timeout_s=0.3)
        _, message = failure(build_chat_model(settings, backend="openai"))
    assert expected in message


def test_openai_server_down(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, openai_base_url=closed_port_url() + "/v1")
    _, message = failure(build_chat_model(settings, backend="openai"))
    assert "Cannot reach the model server" in message


# Choosing a backend


def test_auto_uses_ollama_when_it_has_the_model(tmp_path: Path) -> None:
    with FakeOllama(REPLY, models=["llama3.2:3b"]) as server:
        settings = settings_for(tmp_path, model_backend="auto", ollama_host=server.url)
        model = build_chat_model(settings)
        assert isinstance(model, OllamaChatModel)
        assert "".join(answer(model)) == REPLY


def test_auto_skips_an_ollama_without_the_model(tmp_path: Path) -> None:
    with FakeOllama(REPLY, models=["qwen2.5:7b"]) as server:
        settings = settings_for(tmp_path, model_backend="auto", ollama_host=server.url)
        assert isinstance(build_chat_model(settings), EmbeddedChatModel)


def test_auto_falls_back_to_the_embedded_model(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, model_backend="auto", ollama_host=closed_port_url())
    model = build_chat_model(settings, model="llama3.2:3b")  # an Ollama name: not a GGUF path
    assert isinstance(model, EmbeddedChatModel)
    assert model.name == "embedded · SmolLM2-135M-Instruct.Q4_1"


def test_missing_gguf_file_is_a_settings_error(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "nope.gguf"
    with pytest.raises(SettingsError, match="nope.gguf does not exist"):
        build_chat_model(settings_for(tmp_path, gguf_path=str(missing)), backend="embedded")


def test_a_file_that_is_not_gguf_is_a_settings_error(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("<html>404</html>")
    with pytest.raises(SettingsError, match="not a GGUF model"):
        build_chat_model(settings_for(tmp_path, gguf_path=str(fake)), backend="embedded")


def test_unknown_backend_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="KDESK_MODEL_BACKEND"):
        build_chat_model(settings_for(tmp_path), backend="gpt")


def test_importing_models_loads_no_model_library() -> None:
    code = (
        "import sys, knowledge.assistant.chat\n"
        "loaded = {'ollama', 'openai', 'xllamacpp', 'httpx'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


# The real embedded model


@pytest.fixture
def smollm(tmp_path: Path) -> EmbeddedChatModel:
    settings = settings_for(tmp_path, model_timeout_s=60, embedded_threads=1)  # steady on busy CI
    model = build_chat_model(settings, backend="embedded")
    assert isinstance(model, EmbeddedChatModel)
    return model


@pytest.mark.slow
def test_embedded_smollm2_streams_real_tokens(smollm: EmbeddedChatModel) -> None:
    usage: Usage = {}
    deltas = answer(smollm, max_tokens=16, usage=usage)
    assert len(deltas) > 1
    assert "".join(deltas).strip()
    assert 1 <= usage["completion_tokens"] <= 16
    assert usage["prompt_tokens"] > 10


@pytest.mark.slow
def test_embedded_model_is_loaded_once_per_process(
    smollm: EmbeddedChatModel, tmp_path: Path
) -> None:
    again = build_chat_model(settings_for(tmp_path), backend="embedded")
    assert isinstance(again, EmbeddedChatModel)
    assert again.load() is smollm.load()


@pytest.mark.slow
def test_embedded_stream_can_be_abandoned_and_serves_concurrent_users(
    smollm: EmbeddedChatModel,
) -> None:
    for _ in smollm.stream(QUESTION, temperature=0.1, max_tokens=200):
        break  # the dropped generator cancels the generation
    results: list[str] = []
    users = [
        threading.Thread(target=lambda: results.append("".join(answer(smollm, 12))))
        for _ in range(3)
    ]
    for user in users:
        user.start()
    for user in users:
        user.join(timeout=60)
    assert len(results) == 3 and all(text.strip() for text in results)


@pytest.mark.slow
def test_embedded_prompt_too_long_for_the_context(smollm: EmbeddedChatModel) -> None:
    huge: list[Message] = [{"role": "user", "content": "word " * (smollm.context + 500)}]
    with pytest.raises(ModelUnavailableError, match="KDESK_EMBEDDED_CONTEXT"):
        list(smollm.stream(huge, temperature=0, max_tokens=8))


@pytest.mark.slow
def test_exiting_during_a_generation_does_not_crash_the_process() -> None:
    code = (
        "from knowledge.assistant.chat import build_chat_model\n"
        "from knowledge.core.settings import Settings\n"
        "model = build_chat_model(Settings(gguf_path=''), backend='embedded')\n"
        "story = [{'role': 'user', 'content': 'Tell me a long story about a dragon.'}]\n"
        "print(next(model.stream(story, temperature=0.8, max_tokens=2000)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
