"""The MCP server over Streamable HTTP at /mcp of the served API, through the official MCP
client: every tool acts as the key's user, the leak office's two sides never see each other's
passages, citations or documents, and a missing, wrong, revoked or expired key is a 401."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from tests.leaks import (
    BOTH,
    ENGINEERING,
    FINANCE,
    PASSWORD,
    SIDES,
    Side,
    probe,
)
from tests.service.conftest import Served
from tests.service.mcp_client import (
    HTTP_QUESTIONS,
    call,
    expire,
    leak_check,
    over_http,
    refusal,
    tools_answer_as_the_user,
    tools_listed,
)


def test_http_lists_the_tools_with_their_schemas(served: Served):
    over_http(served, served.key(ENGINEERING.user), tools_listed)


@pytest.mark.parametrize("side", SIDES, ids=lambda s: s.user)
def test_http_tools_answer_as_the_keys_user(served: Served, side: Side):
    over_http(served, served.key(side.user), lambda s: tools_answer_as_the_user(s, served, side))


def test_http_leaks_nothing_between_the_sides(served: Served):
    leaks: list[str] = []
    for side in SIDES:
        leaks += over_http(served, served.key(side.user), leak_check(served, side, HTTP_QUESTIONS))
    assert not leaks, f"{len(leaks)} leaks, e.g. {leaks[:5]}"


def test_http_the_leak_check_sees_what_a_user_of_both_sides_reads(served: Served):
    """The counter-check: with the key of carla (both roles) the same check finds the other
    side's passages, citations and documents, so its silence above means something."""
    leaks = over_http(served, served.key(BOTH), leak_check(served, ENGINEERING, 8, counter=True))
    assert any("Finance" in leak for leak in leaks), leaks[:5]
    assert any("listed" in leak for leak in leaks)


def test_http_answers_are_recorded_as_the_users_on_the_api_channel(served: Served):
    async def work(session: ClientSession) -> dict[str, Any]:
        return await call(session, "ask", question=probe(ENGINEERING.docs[1]))

    answer = over_http(served, served.key(ENGINEERING.user), work)
    event = served.desk.usage.event(answer["event_id"])
    assert (event["user"], event["role"], event["channel"]) == ("ada", "engineer", "api")
    assert event["cited_documents"] == [ENGINEERING.docs[1].file_name]


def test_http_a_rate_limited_user_gets_a_clear_tool_error(served: Served):
    """Its own role and user: the office's users keep their unlimited questions."""
    role = Role(
        "mcp-limited",
        pages=("chat",),
        collections=(ENGINEERING.library,),
        rate_limit=RateLimit(requests=1, window_s=600),
    )
    served.desk.roles.save(role, "test")
    served.desk.accounts.add("mcp-limited", [role.name], "test", password=PASSWORD)
    question = probe(ENGINEERING.docs[0])

    async def work(session: ClientSession) -> str:
        first = await call(session, "ask", question=question)
        assert first["citations"]
        return await refusal(session, "ask", question=question)

    message = over_http(served, served.key("mcp-limited"), work)
    assert "try again" in message.lower(), message


def test_http_searching_and_asking_need_a_role_with_the_chat_page(served: Served):
    """As in the web app (and the other APIs): a role for analytics only reads the documents
    list but neither searches nor asks. Its own role and user."""
    role = Role("mcp-analyst", pages=("analytics",), collections=(ENGINEERING.library,))
    served.desk.roles.save(role, "test")
    served.desk.accounts.add("mcp-analyst", [role.name], "test", password=PASSWORD)

    async def work(session: ClientSession) -> tuple[list[str], dict[str, Any]]:
        refused = [
            await refusal(session, "search_knowledge", query="Zephyr-9 turbine"),
            await refusal(session, "ask", question="How often is the Zephyr-9 inspected?"),
        ]
        return refused, await call(session, "list_documents")

    refused, listed = over_http(served, served.key("mcp-analyst"), work)
    assert all("Your roles do not give access to this." in m for m in refused), refused
    assert {d["collection"] for d in listed["documents"]} == {ENGINEERING.library}


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}


def post_initialize(served: Served, secret: str | None) -> httpx.Response:
    with served.client(secret) as client:
        return client.post(
            "/mcp",
            json=INITIALIZE,
            headers={"Accept": "application/json, text/event-stream"},
        )


def test_http_refuses_missing_wrong_revoked_and_expired_keys(served: Served):
    assert post_initialize(served, served.key(ENGINEERING.user)).status_code == 200
    revoked = served.key(ENGINEERING.user)
    served.desk.api_keys.revoke(served.desk.api_keys.authenticate(revoked).key_id, "ada")
    expired = served.key(ENGINEERING.user, expires_days=1)
    expire(served, expired)
    for secret, reason in (
        (None, "An API key is needed"),
        ("kdesk_not-a-key", "not valid"),
        (revoked, "revoked"),
        (expired, "expired"),
    ):
        response = post_initialize(served, secret)
        assert response.status_code == 401, (reason, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        body = response.json()
        assert body["jsonrpc"] == "2.0" and body["id"] is None
        assert body["error"]["type"] == "authentication_error", body
        assert body["error"]["code"] == 401 and reason in body["error"]["message"]


def test_http_refuses_a_key_without_the_read_scope(served: Served):
    response = post_initialize(served, served.key(ENGINEERING.user, ("upload",)))
    assert response.status_code == 403
    assert "read scope" in response.json()["error"]["message"]


def test_http_a_key_revoked_mid_session_stops_working(served: Served):
    secret = served.key(FINANCE.user)

    async def work(session: ClientSession) -> str:
        await call(session, "list_documents")
        key = served.desk.api_keys.authenticate(secret)
        served.desk.api_keys.revoke(key.key_id, FINANCE.user)
        with pytest.raises(MCPError) as refused:  # the 401's body is a JSON-RPC error too
            await session.call_tool("list_documents", {})
        return str(refused.value)

    assert "This API key is revoked. Create a new one." in over_http(served, secret, work)
    assert post_initialize(served, secret).status_code == 401
