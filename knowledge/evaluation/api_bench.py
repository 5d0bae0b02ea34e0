"""`kdesk bench` section "api": the API under load on loopback. A real uvicorn server runs
``create_app`` over a small desk; N client threads (one httpx client each) send requests at
once. Measured: requests/s and p50/p95 latency of ``POST /api/search``, and of a streamed
``POST /v1/chat/completions`` the time to its first byte and to its end, answered by the
Ollama-protocol stand-in (ollama_standin.py: the desk's real model client, an instant model).

Beside them, the limits: ``GET /health`` at the same concurrency (the HTTP stack alone),
``GET /v1/models`` (plus the key's check and its user's roles) and the same search or answer
through ``UserDesk`` in process, one at a time (no HTTP)."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.core.settings import Settings
from knowledge.desk.demo import load_demo
from knowledge.desk.root import Desk
from knowledge.evaluation.ollama_standin import MODEL, OllamaStandIn
from knowledge.search.embeddings import Embedder

USER = "api-bench"
Request = Callable[[httpx.Client, str], dict[str, float]]  # one request -> its timings (ms)


QUESTIONS = (  # about the demo documents (knowledge/desk/demo.py)
    "How many days of annual leave do full-time employees get?",
    "What is the daily meal allowance when travelling?",
    "How long must passwords be?",
    "Who approves vacation requests?",
    "How are hotel costs reimbursed?",
    "What must I do when I lose my laptop?",
    "How much notice does parental leave need?",
    "When are expense claims due?",
)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    data = np.asarray(values, dtype=np.float64)
    return {
        "p50": round(float(np.percentile(data, 50)), 1),
        "p95": round(float(np.percentile(data, 95)), 1),
    }


@contextmanager
def served(app: object) -> Iterator[str]:
    """``app`` on a real uvicorn server on a free 127.0.0.1 port; yields its URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, name="api-bench-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def health(client: httpx.Client, _question: str) -> dict[str, float]:
    started = time.perf_counter()
    client.get("/health").raise_for_status()
    return {"total": _ms(started)}


def models(client: httpx.Client, _question: str) -> dict[str, float]:
    started = time.perf_counter()
    client.get("/v1/models").raise_for_status()
    return {"total": _ms(started)}


def search(client: httpx.Client, question: str) -> dict[str, float]:
    started = time.perf_counter()
    response = client.post("/api/search", json={"query": question, "k": 5})
    response.raise_for_status()
    assert response.json()["passages"], "a search of the demo documents finds passages"
    return {"total": _ms(started)}


def streamed_answer(client: httpx.Client, question: str) -> dict[str, float]:
    body = {
        "model": "kdesk",
        "messages": [{"role": "user", "content": question}],
        "stream": True,
    }
    started = time.perf_counter()
    first_byte = None
    text = b""
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            if first_byte is None and chunk:
                first_byte = _ms(started)
            text += chunk
    assert b"[DONE]" in text, "the stream ends as OpenAI's does"
    return {"first_byte": first_byte or _ms(started), "total": _ms(started)}


def load(
    url: str, secret: str, request: Request, clients: int, each: int, qs: Sequence[str]
) -> dict[str, object]:
    """``clients`` threads send ``each`` requests one after another, all threads at once."""
    headers = {"Authorization": f"Bearer {secret}"}

    def client_run(n: int) -> list[dict[str, float]]:
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            request(client, qs[0])  # a connection made, outside the timing
            return [request(client, qs[(n * each + i) % len(qs)]) for i in range(each)]

    with ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        timings = [t for run in pool.map(client_run, range(clients)) for t in run]
        seconds = time.perf_counter() - started
    figures: dict[str, object] = {
        "clients": clients,
        "requests": len(timings),
        "requests_per_s": round(len(timings) / seconds, 1),
    }
    for name in timings[0]:
        figures[f"{name}_ms"] = percentiles([t[name] for t in timings])
    return figures


def bench_desk(
    settings: Settings, embedder: Embedder | None, data_dir: Path, model_url: str
) -> Desk:
    """A small desk answering through the stand-in: the demo documents, a user whose role
    searches them all with a rate limit far above the load (checked and counted as usual)."""
    update = {
        "data_dir": data_dir,
        "database_url": "",
        "chroma_url": "",
        "redis_url": "",
        "model_backend": "ollama",
        "ollama_host": model_url,
        "ollama_model": MODEL,
        "answer_cache": False,  # every answer is made afresh
        "rewrite_followups": False,
        "tool_planning": False,
    }
    desk = Desk(settings.model_copy(update=update), embedder=embedder)
    load_demo(desk)
    limit = RateLimit(requests=1_000_000, tokens=0, window_s=60)
    desk.roles.save(Role("api bench", collections=("*",), rate_limit=limit), "bench")
    desk.accounts.add(USER, ["api bench"], "bench", password="a long api bench password")
    return desk


def warm_up(desk: Desk, qs: Sequence[str]) -> None:
    """Each question asked once, untimed: the indexes and the model client loaded, and the
    evidence check's word vectors cached, as in a server that has run for a while."""
    me = desk.for_user(USER)
    for q in qs:
        for _ in me.ask(q, None):
            pass


def in_process(desk: Desk, qs: Sequence[str]) -> dict[str, object]:
    """The same search and answer through UserDesk, one at a time: the floor under HTTP."""
    me = desk.for_user(USER)
    search_ms, answer_ms, answered = [], [], 0
    for q in qs:
        started = time.perf_counter()
        me.search(q, None, 5)
        search_ms.append(_ms(started))
    for q in qs:
        started = time.perf_counter()
        for _ in (stream := me.ask(q, None)):
            pass
        answer_ms.append(_ms(started))
        answered += not (stream.answer.abstained or stream.answer.error)
    return {
        "search_ms": percentiles(search_ms),
        "answer_ms": percentiles(answer_ms),
        "answered": f"{answered}/{len(qs)}",  # the stand-in's cited quotes pass verification
    }


SECTIONS: dict[str, tuple[str, Request]] = {
    "health": ("/health", health),
    "models": ("/v1/models", models),  # the key checked, its user's roles read: no other work
    "search": ("/api/search", search),
    "streamed_answer": ("/v1/chat/completions", streamed_answer),
}


def bench_routes() -> set[str]:
    """The paths the API's routers hold in this build."""
    from knowledge.service import openai_api, rest

    paths = {getattr(r, "path", "") for r in (*openai_api.router.routes, *rest.router.routes)}
    return paths | {"/health"}  # the app's own


def bench_api(
    settings: Settings, embedder: Embedder | None = None, quick: bool = False
) -> dict[str, object]:
    from knowledge.service.app import create_app

    concurrency, each = ((1, 4), 5) if quick else ((1, 4, 16), 25)
    qs = QUESTIONS
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="kdesk-api-bench-") as tmp, OllamaStandIn() as model:
        desk = bench_desk(settings, embedder, Path(tmp), model.url)
        _, secret = desk.api_keys.create(USER, "bench", ["read"], expires_days=1)
        warm_up(desk, qs)
        floor = in_process(desk, qs)
        routes = bench_routes()
        result: dict[str, object] = {"in_process": floor}
        with served(create_app(desk)) as url:
            for section, (path, request) in SECTIONS.items():
                result[section] = (
                    [load(url, secret, request, c, each, qs) for c in concurrency]
                    if path in routes
                    else {"skipped": f"{path} is not in this build"}
                )
        desk.close()
    result["machine"] = {
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    return result
