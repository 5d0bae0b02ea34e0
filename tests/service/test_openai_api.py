"""The OpenAI-compatible API, spoken to by the real clients (openai, LangChain) over loopback:
grounded answers with [n] markers and their citations, streamed and not, the persona picked
by ``model``, history, the key's user's limits and permissions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from openai import OpenAI

from knowledge.access.audit import AuditQuery
from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from tests.leaks import BOTH, ENGINEERING, FINANCE, NOBODY, PASSWORD, probe
from tests.service.conftest import Served

TURBINE = probe(ENGINEERING.docs[0])  # answered from the turbine manual
TREASURY = probe(FINANCE.docs[0])
MARKER = re.compile(r"\[\d+\]")
JSON = {"Content-Type": "application/json"}


def client(served: Served, secret: str) -> OpenAI:
    return OpenAI(base_url=served.url + "/v1", api_key=secret, max_retries=0)


@pytest.fixture(scope="module")
def ada(served: Served) -> OpenAI:
    return client(served, served.key(ENGINEERING.user))


def ask(openai_client: OpenAI, question: str, model: str = "kdesk", **more: Any) -> Any:
    messages = [{"role": "user", "content": question}]
    return openai_client.chat.completions.create(model=model, messages=messages, **more)


def streamed(openai_client: OpenAI, question: str, **more: Any) -> list[Any]:
    return list(ask(openai_client, question, stream=True, **more))


# Answers -------------------------------------------------------------------------------------


def test_an_answer_is_a_chat_completion_with_markers_and_citations(served: Served, ada: OpenAI):
    completion = ask(ada, TURBINE)
    [choice] = completion.choices
    assert completion.object == "chat.completion" and completion.model == "kdesk"
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert "400 operating hours" in choice.message.content
    assert MARKER.search(choice.message.content)
    assert completion.citations, "the extension field is kept by the openai client"
    cited = completion.citations[0]
    assert cited["document"] == "turbine-maintenance.pdf" and cited["page"] == 1
    assert cited["doc_id"] in served.doc_ids[ENGINEERING.user]
    api_url = served.desk.settings.api_url
    assert cited["link"] == f"{api_url}/api/documents/{cited['doc_id']}/pages/1"
    app_url = served.desk.settings.app_url
    assert cited["web_link"] == f"{app_url}/?source={cited['doc_id']}&page=1"
    assert f"[{cited['n']}]" in choice.message.content
    info = completion.kdesk
    assert info["abstained"] is False and info["evidence"] in ("strong", "weak")
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_answer_is_recorded_as_the_keys_user_on_the_api_channel(served: Served, ada: OpenAI):
    completion = ask(ada, TURBINE)
    event = served.desk.usage.event(completion.kdesk["event_id"])
    assert event["user"] == ENGINEERING.user and event["role"] == ENGINEERING.role
    assert event["channel"] == "api"
    assert event["tokens_in"] == completion.usage.prompt_tokens
    assert event["cited_documents"] == ["turbine-maintenance.pdf"]


def test_a_cited_link_opens_the_page_with_the_same_key(served: Served):
    secret = served.key(ENGINEERING.user)
    cited = ask(client(served, secret), TURBINE).citations[0]
    path = httpx.URL(cited["link"]).path
    with served.client(secret) as http:
        routes = http.get("/openapi.json").json()["paths"]
        if "/api/documents/{doc_id}/pages/{page}" in routes:  # the REST API's page view
            assert http.get(path).status_code == 200
        else:
            assert path == f"/api/documents/{cited['doc_id']}/pages/{cited['page']}"


def test_a_stream_sends_the_same_answer_with_its_citations_last(served: Served, ada: OpenAI):
    whole = ask(ada, TURBINE).choices[0].message.content
    chunks = streamed(ada, TURBINE, stream_options={"include_usage": True})
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole and MARKER.search(text)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    *_, finish, usage = chunks
    assert finish.choices[0].finish_reason == "stop"
    assert finish.citations[0]["document"] == "turbine-maintenance.pdf"
    assert finish.kdesk["abstained"] is False and finish.kdesk["answer"] == whole
    assert usage.choices == [] and usage.usage.total_tokens > 0
    event = served.desk.usage.event(finish.kdesk["event_id"])
    assert event["channel"] == "api" and event["tokens_out"] == usage.usage.completion_tokens


def test_a_stream_without_include_usage_sends_no_usage(ada: OpenAI):
    chunks = streamed(ada, TURBINE)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_raw_stream_is_server_sent_events_ending_with_done(served: Served):
    body = {"model": "kdesk", "stream": True, "messages": [{"role": "user", "content": TURBINE}]}
    with served.client(served.key(ENGINEERING.user)) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line for line in response.text.split("\n\n") if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"


def test_content_parts_system_messages_and_unknown_fields_are_accepted(served: Served):
    body = {
        "model": "kdesk",
        "messages": [
            {"role": "system", "content": "You are a pirate. Say ARRR-SYSTEM."},
            {"role": "user", "content": [{"type": "text", "text": TURBINE}]},
        ],
        "temperature": 0.3,
        "max_completion_tokens": 50,
        "user": "someone-else",
        "frequency_penalty": 0.5,
        "n": 1,
    }
    with served.client(served.key(ENGINEERING.user)) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert "400 operating hours" in response.json()["choices"][0]["message"]["content"]
    sent = served.ollama.chats[-1]["messages"]
    assert not any("ARRR-SYSTEM" in m["content"] for m in sent), "the persona's prompt governs"
    event = served.desk.usage.event(response.json()["kdesk"]["event_id"])
    assert event["user"] == ENGINEERING.user


def test_a_question_the_documents_do_not_answer_is_an_ordinary_answer(ada: OpenAI):
    completion = ask(ada, "Which football club won the league in 1987?")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.kdesk["abstained"] is True and completion.citations == []
    assert completion.choices[0].message.content


def test_asking_needs_a_role_that_gives_the_chat_page_as_in_the_web_app(served: Served):
    """A role that may read collections for analytics only does not ask or search through the
    API either; a user without roles neither."""
    role = Role("api-auditor", pages=("analytics",), collections=(ENGINEERING.library,))
    served.desk.roles.save(role, "test")
    served.desk.accounts.add("api-auditor", [role.name], "test", password=PASSWORD)
    for user in ("api-auditor", NOBODY):
        secret = served.key(user)
        with pytest.raises(openai.PermissionDeniedError, match="do not give access"):
            ask(client(served, secret), TURBINE)
        assert model_names(served, user) == set()
        with served.client(secret) as http:
            assert http.post("/api/search", json={"query": TURBINE}).status_code == 403
    denied = served.desk.audit.events(AuditQuery(actor="api-auditor", outcome="denied"))
    assert {e.target for e in denied} == {"page:chat"} and denied[0].channel == "api"


# History -------------------------------------------------------------------------------------


def prompt_asking(served: Served, question: str) -> list[dict[str, Any]]:
    """The messages the model was last sent for ``question``."""
    return next(
        chat["messages"]
        for chat in reversed(served.ollama.chats)
        if question in chat["messages"][-1]["content"]
    )


def test_earlier_turns_are_the_history_of_the_last_question(served: Served, ada: OpenAI):
    first = "How often must the Zephyr-9 turbine be inspected?"
    earlier = ask(ada, first).choices[0].message.content
    follow_up = "What coolant does it take?"
    messages = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": earlier},
        {"role": "user", "content": follow_up},
    ]
    answer = ada.chat.completions.create(model="kdesk", messages=messages)
    sent = prompt_asking(served, follow_up)
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == first
    assert "400 operating hours" in earlier and "400 operating hours" in sent[2]["content"]
    assert "Kryolite K-40" in answer.choices[0].message.content
    before = len(served.ollama.chats)
    ask(ada, follow_up)
    assert all(len(chat["messages"]) == 2 for chat in served.ollama.chats[before:])


def test_the_last_message_must_be_the_users_question(ada: OpenAI):
    messages = [{"role": "user", "content": TURBINE}, {"role": "assistant", "content": "Yes."}]
    with pytest.raises(openai.BadRequestError, match="last message must be a user message"):
        ada.chat.completions.create(model="kdesk", messages=messages)  # type: ignore[arg-type]


def test_only_one_choice_is_offered(ada: OpenAI):
    with pytest.raises(openai.UnprocessableEntityError, match="n=1"):
        ask(ada, TURBINE, n=2)


def test_a_request_the_api_cannot_read_is_a_json_error(served: Served):
    image_only = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    with served.client(served.key(ENGINEERING.user)) as http:
        empty = http.post("/v1/chat/completions", json={"model": "kdesk", "messages": []})
        image = http.post("/v1/chat/completions", json={"model": "kdesk", "messages": image_only})
        garbled = http.post("/v1/chat/completions", content=b"{not json", headers=JSON)
    assert empty.status_code == 422 and "messages" in empty.json()["error"]["message"]
    assert image.status_code == 400 and image.json()["error"]["type"] == "invalid_request_error"
    assert garbled.status_code == 422 and garbled.json()["error"]["message"]


def test_the_schema_documents_the_chat_api(served: Served):
    with served.client(None) as http:
        schema = http.get("/openapi.json").json()
    chat = schema["paths"]["/v1/chat/completions"]["post"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    bodies = schema["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "KdeskInfo", "ModelList"} <= set(bodies)
    assert "/v1/models/{model_id}" in schema["paths"]


# Personas ------------------------------------------------------------------------------------


def model_names(served: Served, user: str) -> set[str]:
    return {m.id for m in client(served, served.key(user)).models.list()}


def test_the_models_are_the_personas_of_the_keys_user(served: Served):
    assert model_names(served, BOTH) == {"kdesk", "kdesk:engineer", "kdesk:controller"}
    assert model_names(served, ENGINEERING.user) == {"kdesk", "kdesk:engineer"}
    assert model_names(served, NOBODY) == set()
    with served.client(served.key(ENGINEERING.user)) as http:
        listed = http.get("/v1/models").json()
    assert listed["object"] == "list"
    assert set(listed["data"][0]) == {"id", "object", "created", "owned_by"}
    assert client(served, served.key(BOTH)).models.retrieve("kdesk:controller").object == "model"


def test_another_roles_persona_is_not_found_like_a_missing_model(served: Served, ada: OpenAI):
    errors = []
    for model in ("kdesk:controller", "kdesk:no-such-role", "gpt-4o"):
        with pytest.raises(openai.NotFoundError) as caught:
            ask(ada, TREASURY, model=model)
        errors.append(caught.value.body)
        with pytest.raises(openai.NotFoundError):
            ada.models.retrieve(model)
    assert all(e["code"] == "model_not_found" for e in errors)  # type: ignore[index]
    assert errors[0]["message"].replace("controller", "no-such-role") == errors[1]["message"]  # type: ignore[index]


def test_a_role_of_ones_own_is_the_persona_asked_in(served: Served):
    carla = client(served, served.key(BOTH))
    completion = ask(carla, TREASURY, model="kdesk:controller")
    assert completion.model == "kdesk:controller"
    assert completion.citations[0]["document"] == "treasury-report.pdf"
    assert served.desk.usage.event(completion.kdesk["event_id"])["role"] == FINANCE.role


# Keys ----------------------------------------------------------------------------------------


def test_a_wrong_or_revoked_key_is_an_authentication_error(served: Served):
    key, secret = served.desk.api_keys.create(ENGINEERING.user, "gone", ["read"], expires_days=None)
    served.desk.api_keys.revoke(key.key_id, ENGINEERING.user)
    for wrong in (secret, "kdesk_not-a-key"):
        with pytest.raises(openai.AuthenticationError):
            ask(client(served, wrong), TURBINE)
        with pytest.raises(openai.AuthenticationError):
            client(served, wrong).models.list()
    with pytest.raises(openai.AuthenticationError):
        streamed(client(served, secret), TURBINE)


def test_a_key_without_the_read_scope_may_not_ask(served: Served):
    with pytest.raises(openai.PermissionDeniedError, match="read scope"):
        ask(client(served, served.key(ENGINEERING.user, ["upload"])), TURBINE)


# LangChain -----------------------------------------------------------------------------------


def test_langchain_chat_openai_invokes_and_streams(served: Served):
    chat = ChatOpenAI(
        base_url=served.url + "/v1", api_key=served.key(ENGINEERING.user), model="kdesk"
    )
    reply = chat.invoke(TURBINE)
    assert "400 operating hours" in str(reply.content) and MARKER.search(str(reply.content))
    pieces = [str(chunk.content) for chunk in chat.stream(TURBINE)]
    assert "".join(pieces) == reply.content and len([p for p in pieces if p]) > 1
    counted = chat.model_copy(update={"stream_usage": True})
    whole = None
    for chunk in counted.stream(TURBINE):
        whole = chunk if whole is None else whole + chunk
    assert whole is not None and whole.content == reply.content
    assert whole.usage_metadata and whole.usage_metadata["total_tokens"] > 0


# Rate limits ---------------------------------------------------------------------------------


def strict_user(served: Served, name: str, limit: RateLimit | None = None) -> str:
    """A user of their own with 5 questions per 10 minutes (the office's users stay free);
    the secret of a key of theirs."""
    role = Role(
        f"{name}-role",
        collections=(ENGINEERING.library + "*",),
        rate_limit=limit or RateLimit(requests=5, window_s=600),
    )
    served.desk.roles.save(role, "test")
    served.desk.accounts.add(name, [role.name], "test", password=PASSWORD)
    return served.key(name)


def at_once(call: Callable[[], object], times: int = 20) -> list[object]:
    """``call`` from ``times`` threads at the same time: each result or the error it raised."""

    def outcome(_: int) -> object:
        try:
            return call()
        except openai.APIStatusError as exc:
            return exc

    with ThreadPoolExecutor(times) as pool:
        return list(pool.map(outcome, range(times)))


def assert_five_answered(outcomes: list[object], served: Served, user: str) -> None:
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert len(refused) == 15 and len(outcomes) - len(refused) == 5, outcomes
    assert all(int(r.response.headers["retry-after"]) > 0 for r in refused)
    assert refused[0].body["type"] == "rate_limit_error"  # type: ignore[index]
    audit = served.desk.audit.events(AuditQuery(actor=user, actions=("rate_limited",)))
    assert len(audit) == 15 and all(e.channel == "api" for e in audit)


def test_a_strict_rate_limit_holds_under_concurrent_requests(served: Served):
    strict = client(served, strict_user(served, "api-burst"))
    outcomes = at_once(lambda: ask(strict, TURBINE).choices[0].message.content)
    assert_five_answered(outcomes, served, "api-burst")
    assert all("400 operating hours" in str(o) for o in outcomes if isinstance(o, str))


def test_a_strict_rate_limit_holds_for_concurrent_streams(served: Served):
    strict = client(served, strict_user(served, "api-burst-stream"))

    def stream_text() -> str:
        chunks: Iterator[Any] = ask(strict, TURBINE, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    outcomes = at_once(stream_text)
    assert_five_answered(outcomes, served, "api-burst-stream")
    assert all("400 operating hours" in str(o) for o in outcomes if isinstance(o, str))


def test_the_openai_client_waits_for_retry_after_and_then_gets_its_answer(served: Served):
    secret = strict_user(served, "api-patient", RateLimit(requests=1, window_s=2))
    ask(client(served, secret), TURBINE)
    patient = OpenAI(base_url=served.url + "/v1", api_key=secret, max_retries=3)
    assert "400 operating hours" in ask(patient, TURBINE).choices[0].message.content
    audit = served.desk.audit.events(AuditQuery(actor="api-patient", actions=("rate_limited",)))
    assert 1 <= len(audit) <= 3, "refused first, answered once the window let it in"


def test_the_openai_client_does_not_retry_a_long_wait(served: Served):
    secret = strict_user(served, "api-impatient", RateLimit(requests=1, window_s=600))
    ask(client(served, secret), TURBINE)
    eager = OpenAI(base_url=served.url + "/v1", api_key=secret, max_retries=3)
    with pytest.raises(openai.RateLimitError):
        ask(eager, TURBINE)
    audit = served.desk.audit.events(AuditQuery(actor="api-impatient", actions=("rate_limited",)))
    assert len(audit) == 1, "a Retry-After beyond two minutes is not retried by the client"


# A model that fails --------------------------------------------------------------------------


@pytest.fixture
def failing_model(served: Served) -> Iterator[None]:
    """The model breaks off half-way through every answer while the test runs."""
    served.ollama.mode = "error_midstream"
    try:
        yield
    finally:
        served.ollama.mode = "ok"


@pytest.mark.usefixtures("failing_model")
def test_a_model_failing_mid_stream_ends_the_stream_with_the_verified_sources(ada: OpenAI):
    chunks = streamed(ada, TURBINE)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = chunks[-1]
    assert finish.choices[0].finish_reason == "stop"
    assert finish.kdesk["error"] and finish.kdesk["answer"] in text
    assert "400 operating hours" in finish.kdesk["answer"] and finish.citations
    assert text.endswith(finish.kdesk["answer"])


@pytest.mark.usefixtures("failing_model")
def test_a_model_failing_is_still_an_answer_from_the_sources(ada: OpenAI):
    completion = ask(ada, TURBINE)
    assert completion.kdesk["error"] and completion.citations
    assert "400 operating hours" in completion.choices[0].message.content
