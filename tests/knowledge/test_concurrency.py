"""Sessions at the same time: the token counts of answers streamed at once each belong to their
own answer (the shared chat model keeps none), and the desk's shared components are built once
however many threads ask for them first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from knowledge.core.settings import Settings
from knowledge.core.types import AnswerStream
from knowledge.desk import root
from knowledge.desk.ingestion import Upload
from knowledge.desk.root import Desk
from tests.conftest import ScriptedChatModel
from tests.fake_ollama import FakeOllama, count_words, split_reply
from tests.fake_openai import FakeOpenAI
from tests.pages.support import (
    FILE_NAME,
    HOTEL_QUESTION,
    MODEL,
    VACATION_QUESTION,
    grounded_reply,
    handbook_pdf,
)

QUESTIONS = (VACATION_QUESTION, HOTEL_QUESTION)


def in_turns(streams: Sequence[Iterable[str]]) -> list[list[str]]:
    """Each stream read in a thread of its own, one delta at a time and in turns: a delta of
    the first, then one of the second, and so on (a finished stream drops out)."""
    received: list[list[str]] = [[] for _ in streams]
    finished = [False] * len(streams)
    errors: list[BaseException] = []
    go = [threading.Semaphore(0) for _ in streams]
    stepped = threading.Semaphore(0)

    def read(i: int, deltas: Iterator[str]) -> None:
        while not finished[i]:
            go[i].acquire()
            try:
                received[i].append(next(deltas))
            except StopIteration:
                finished[i] = True
            except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
                errors.append(exc)
                finished[i] = True
            stepped.release()

    readers = [
        threading.Thread(target=read, args=(i, iter(s)), daemon=True) for i, s in enumerate(streams)
    ]
    for reader in readers:
        reader.start()
    while not all(finished):
        for i in range(len(streams)):
            if not finished[i]:
                go[i].release()
                assert stepped.acquire(timeout=60), "a stream stopped answering"
    for reader in readers:
        reader.join(timeout=10)
    if errors:
        raise errors[0]
    return received


def question_of(messages: Sequence[dict[str, Any]]) -> str:
    return next(q for q in QUESTIONS if q in str(messages[-1]["content"]))


def recorded_tokens(desk: Desk, streams: Sequence[AnswerStream]) -> dict[str, tuple]:
    found = {}
    for stream in streams:
        assert stream.answer.event_id, "each answer is recorded"
        event = desk.usage.event(stream.answer.event_id)
        found[stream.answer.question] = (
            event["tokens_in"],
            event["tokens_out"],
            event["tokens_estimated"],
        )
    return found


def test_answers_streamed_in_turns_each_record_their_own_token_counts(settings: Settings, embedder):
    model = ScriptedChatModel(grounded_reply, counts=True)  # one model for both sessions
    desk = Desk(settings, embedder=embedder, model=model)
    desk.ingest([Upload(FILE_NAME, handbook_pdf())], "HR")
    streams = [desk.ask(q) for q in QUESTIONS]

    received = in_turns(streams)

    assert all(len(deltas) > 3 for deltas in received), "the streams were interleaved"
    expected = {
        question_of(call["messages"]): (
            count_words(call["messages"]),
            len(split_reply(grounded_reply(call["messages"]))[0]),
            False,
        )
        for call in model.calls
    }
    assert len(set(expected.values())) == 2, "the two requests' counts differ"
    assert recorded_tokens(desk, streams) == expected


@pytest.fixture(params=["ollama", "openai"])
def served(request: pytest.FixtureRequest, tmp_path: Path, embedder) -> Iterator[tuple]:
    """A desk answering through a fake Ollama or OpenAI-compatible server (the real client,
    one chat model shared by every question), and the server."""
    if request.param == "ollama":
        server: FakeOllama | FakeOpenAI = FakeOllama(grounded_reply, models=[MODEL])
        with server:
            yield _served_desk(tmp_path, embedder, ollama_host=server.url), server
    else:
        with FakeOpenAI(grounded_reply) as server:
            url = server.url + "/v1"
            yield _served_desk(tmp_path, embedder, openai_base_url=url), server


def _served_desk(tmp_path: Path, embedder, **server: str) -> Desk:
    backend = "ollama" if "ollama_host" in server else "openai"
    settings = Settings(
        data_dir=tmp_path / "data",
        model_backend=backend,  # type: ignore[arg-type]
        ollama_model=MODEL,
        **server,  # type: ignore[arg-type]
    )
    desk = Desk(settings, embedder=embedder)
    desk.ingest([Upload(FILE_NAME, handbook_pdf())], "HR")
    return desk


def server_counts(server: FakeOllama | FakeOpenAI) -> dict[str, tuple]:
    """What the fake server reported for each question: prompt words, reply pieces."""
    return {
        question_of(chat["messages"]): (
            count_words(chat["messages"]),
            len(split_reply(grounded_reply(chat["messages"]))[0]),
            False,
        )
        for chat in server.chats
    }


def test_answers_streamed_in_turns_through_a_server_record_their_own_counts(served):
    desk, server = served
    streams = [desk.ask(q) for q in QUESTIONS]
    received = in_turns(streams)
    assert all(len(deltas) > 3 for deltas in received)
    expected = server_counts(server)
    assert len(set(expected.values())) == 2
    assert recorded_tokens(desk, streams) == expected


def test_an_answer_whose_stream_ends_while_another_runs_keeps_its_own_counts(served):
    """The first answer's counts have arrived but its stream is still open while the second
    answer streams from start to end: the counts of neither may end up on the other."""
    desk, server = served
    hold, held = threading.Event(), threading.Event()

    def before_end(body: Any) -> None:
        if question_of(body["messages"]) == VACATION_QUESTION:
            held.set()
            hold.wait(30)

    server.before_end = before_end
    first, second = (desk.ask(q) for q in QUESTIONS)
    reader = threading.Thread(target=lambda: "".join(first), daemon=True)
    reader.start()
    try:
        assert held.wait(30), "the first stream reached its end"
        assert "".join(second)
    finally:
        hold.set()
    reader.join(timeout=30)
    assert not reader.is_alive()
    expected = server_counts(server)
    assert len(set(expected.values())) == 2
    assert recorded_tokens(desk, [first, second]) == expected


# Shared components ----------------------------------------------------------------------------


def built_once(factory: Callable[..., Any], counter: list[int]) -> Callable[..., Any]:
    """``factory``, slowed down (so that threads meet while it runs) and counted."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        counter.append(1)
        time.sleep(0.05)
        return factory(*args, **kwargs)

    return slow


def at_once(count: int, call: Callable[[], Any]) -> list[Any]:
    """``call`` from ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_shared_components_are_built_once_when_many_threads_ask_first(
    settings: Settings, embedder, monkeypatch: pytest.MonkeyPatch
):
    counts: dict[str, list[int]] = {
        name: [] for name in ("embedder", "retriever", "judge", "model")
    }
    monkeypatch.setattr(
        root,
        "SentenceTransformerEmbedder",
        built_once(lambda *a, **k: embedder, counts["embedder"]),
    )
    monkeypatch.setattr(root, "Retriever", built_once(root.Retriever, counts["retriever"]))
    monkeypatch.setattr(root, "EvidenceJudge", built_once(root.EvidenceJudge, counts["judge"]))
    monkeypatch.setattr(
        root, "build_chat_model", built_once(lambda *a, **k: ScriptedChatModel(), counts["model"])
    )
    desk = Desk(settings)  # builds everything itself, on first use

    judges = at_once(8, lambda: desk.judge)  # needs the retriever, which needs the embedder
    retrievers = at_once(8, lambda: desk.retriever)
    models = at_once(8, lambda: (desk.model, desk.model_for("ollama:other")))

    assert {k: len(v) for k, v in counts.items()} == {
        "embedder": 1,
        "retriever": 1,
        "judge": 1,
        "model": 2,  # the desk's own and the persona's
    }
    assert len({id(j) for j in judges}) == len({id(r) for r in retrievers}) == 1
    assert judges[0].retriever is retrievers[0] and retrievers[0].embedder is embedder
    assert len(set(models)) == 1 and models[0][0] is not models[0][1]
