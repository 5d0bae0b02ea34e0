"""The REST API against the live server: each route's answer and its errors, as the key's user
(tests/leaks.py's office; uploads and strict limits with users and collections of their own)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from knowledge.access.api_keys import ApiKeyRow
from knowledge.access.ratelimit import RateLimit
from knowledge.access.roles import Role
from knowledge.core.db import utc_now
from knowledge.core.errors import ModelUnavailableError
from knowledge.core.settings import Settings
from knowledge.core.types import Answer, AnswerStream
from knowledge.desk.root import Desk
from knowledge.service.app import create_app
from knowledge.service.rest import answer_events
from tests.leaks import ENGINEERING, FINANCE, NOBODY, PASSWORD, probe
from tests.pdfs import make_pdf
from tests.service.conftest import Served
from tests.service.live import LiveServer

TURBINE = ENGINEERING.docs[0]
ERROR_KEYS = {"message", "type", "code"}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == ERROR_KEYS
    return str(body["error"]["message"])


def ada(served: Served, *scopes: str) -> httpx.Client:
    return served.client(served.key(ENGINEERING.user, scopes or ("read",)))


def own_user(served: Served, name: str, limit: RateLimit | None = None) -> str:
    """A user of their own, uploading to and reading a collection of their own."""
    collection = f"Api {name.title()}"
    role = Role(
        f"api-{name}",
        pages=("chat", "knowledge", "analytics"),
        collections=(collection,),
        upload_collections=(collection,),
        rate_limit=limit or RateLimit(),
    )
    served.desk.roles.save(role, "test")
    if served.desk.accounts.account(name) is None:
        served.desk.accounts.add(name, [role.name], "test", password=PASSWORD)
    return collection


def events(response: httpx.Response) -> list[tuple[str, Any]]:
    """The server-sent events of a response: (event, data)."""
    found = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        found.append((lines["event"], json.loads(lines["data"])))
    return found


# Keys ------------------------------------------------------------------------------------------


def test_a_missing_wrong_revoked_or_expired_key_is_401(served: Served):
    book = served.desk.api_keys
    revoked, revoked_secret = book.create(ENGINEERING.user, "old", "read", expires_days=None)
    book.revoke(revoked.key_id, ENGINEERING.user)
    expired, expired_secret = book.create(ENGINEERING.user, "short", "read", expires_days=1)
    with served.desk.engine.begin() as connection:
        connection.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == expired.key_id)
            .values(expires_at=utc_now() - timedelta(minutes=1))
        )
    for secret, why in [
        (None, ""),
        ("kdesk_not-a-key", ""),
        (revoked_secret, "revoked"),
        (expired_secret, "expired"),
    ]:
        with served.client(secret) as client:
            response = client.post("/api/search", json={"query": "turbine"})
        assert why in error_of(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_of_a_removed_user_is_401(served: Served):
    desk = served.desk
    desk.accounts.add("gone-api-user", [ENGINEERING.role], "test", password=PASSWORD)
    secret = served.key("gone-api-user")
    with served.client(secret) as client:
        assert client.get("/api/collections").status_code == 200
        desk.accounts.remove("gone-api-user", "root")
        error_of(client.get("/api/collections"), 401)


def test_a_key_without_the_read_scope_cannot_search(served: Served):
    with ada(served, "upload") as client:
        response = client.post("/api/search", json={"query": "turbine"})
    assert "read scope" in error_of(response, 403)


# Search and ask --------------------------------------------------------------------------------


def test_search_finds_the_users_passages_with_links_to_their_pages(served: Served):
    with ada(served) as client:
        response = client.post("/api/search", json={"query": probe(TURBINE), "k": 3})
        assert response.status_code == 200, response.text
        passages = response.json()["passages"]
        assert 0 < len(passages) <= 3
        assert {p["doc_id"] for p in passages} <= served.doc_ids[ENGINEERING.user]
        best = passages[0]
        assert best["document"] == TURBINE.file_name and "Zephyr-9" in best["text"]
        assert best["link"].endswith(f"/api/documents/{best['doc_id']}/pages/{best['page']}")
        page = client.get(best["link"].removeprefix(served.desk.settings.api_url))
    assert page.status_code == 200, page.text
    assert "Zephyr-9" in page.json()["text"]
    assert page.json()["place"]["document"] == TURBINE.file_name


def test_search_narrowed_by_a_filter(served: Served):
    cleanroom = ENGINEERING.docs[1].file_name
    body = {"query": "inspection", "filter": {"documents": [cleanroom]}}
    with ada(served) as client:
        passages = client.post("/api/search", json=body).json()["passages"]
        assert passages and {p["document"] for p in passages} == {cleanroom}
        wrong = {"query": "x", "filter": {"since": "2026-02-01", "until": "2026-01-01"}}
        assert "comes after" in error_of(client.post("/api/search", json=wrong), 400)
        assert "query" in error_of(client.post("/api/search", json={"query": ""}), 422)


def test_search_of_a_foreign_collection_finds_nothing(served: Served):
    body = {"query": probe(FINANCE.docs[0]), "collections": [FINANCE.library]}
    with ada(served) as client:
        assert client.post("/api/search", json=body).json()["passages"] == []


def test_ask_answers_with_citations_and_takes_feedback_on_own_answers(served: Served):
    with ada(served) as client:
        response = client.post("/api/ask", json={"question": probe(TURBINE)})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert not answer["abstained"] and "Zephyr-9" in answer["answer"]
        assert answer["citations"][0]["document"] == TURBINE.file_name
        event_id = answer["event_id"]
        rated = client.post("/api/feedback", json={"event_id": event_id, "rating": "up"})
        assert rated.json() == {"event_id": event_id, "rating": "up", "comment": None}
        unknown = client.post("/api/feedback", json={"event_id": "nope", "rating": None})
        error_of(unknown, 404)
    assert served.desk.usage.event(event_id)["feedback"] == 1
    with served.client(served.key(FINANCE.user)) as client:
        theirs = client.post("/api/feedback", json={"event_id": event_id, "rating": "down"})
    assert "your own answers" in error_of(theirs, 403)


def test_ask_streams_server_sent_events_ending_with_the_answer(served: Served):
    body = {"question": probe(TURBINE), "stream": True}
    with ada(served) as client:
        response = client.post("/api/ask", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response)
    kinds = [kind for kind, _ in found]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"delta"}
    answer = found[-1][1]
    assert "Zephyr-9" in "".join(data["text"] for _, data in found[:-1])
    assert answer["citations"] and answer["event_id"]


def test_an_error_once_streaming_began_is_an_error_event():
    def failing() -> Iterator[str]:
        yield "The first words"
        raise ModelUnavailableError("The model stopped answering.")

    stream = AnswerStream(failing(), Answer("q", "", True, "m"))
    sent = b"".join(answer_events(stream, "http://api"))
    found = events(httpx.Response(200, content=sent))
    assert found == [
        ("delta", {"text": "The first words"}),
        (
            "error",
            {
                "error": {
                    "message": "The model stopped answering.",
                    "type": "model_unavailable",
                    "code": 503,
                }
            },
        ),
    ]


def test_ask_in_a_role_that_is_not_yours_is_403(served: Served):
    with ada(served) as client:
        response = client.post("/api/ask", json={"question": "hi", "role": FINANCE.role})
    assert "not one of your roles" in error_of(response, 403)


def test_the_rate_limit_is_429_with_retry_after(served: Served):
    own_user(served, "lena", RateLimit(requests=1, window_s=600))
    with served.client(served.key("lena")) as client:
        assert client.post("/api/ask", json={"question": "anything"}).status_code == 200
        for stream in (False, True):
            response = client.post("/api/ask", json={"question": "again", "stream": stream})
            error_of(response, 429)
            assert int(response.headers["retry-after"]) >= 1


# Documents -------------------------------------------------------------------------------------


def test_documents_lists_only_the_users_documents(served: Served):
    with ada(served) as client:
        listed = client.get("/api/documents").json()["documents"]
    assert {d["doc_id"] for d in listed} == served.doc_ids[ENGINEERING.user]
    assert {d["collection"] for d in listed} == set(ENGINEERING.collections)
    turbine = next(d for d in listed if d["file_name"] == TURBINE.file_name)
    assert turbine["title"] == TURBINE.title and turbine["pages"] == 2
    assert turbine["tags"] == [ENGINEERING.tag] and not turbine["superseded"]
    assert turbine["media_type"] == "application/pdf"


def test_a_document_its_pages_and_its_original(served: Served):
    doc_id = next(d for d in ada(served).get("/api/documents").json()["documents"])["doc_id"]
    with ada(served) as client:
        info = client.get(f"/api/documents/{doc_id}").json()
        assert info["doc_id"] == doc_id
        page = client.get(f"/api/documents/{doc_id}/pages/1").json()
        assert page["page"] == 1 and page["pages"] == info["pages"] and page["text"]
        png = client.get(f"/api/documents/{doc_id}/pages/1", params={"format": "png"})
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        error_of(client.get(f"/api/documents/{doc_id}/pages/{info['pages'] + 1}"), 404)
        error_of(client.get(f"/api/documents/{doc_id}/pages/0"), 404)
        original = client.get(f"/api/documents/{doc_id}/original")
    assert original.headers["content-type"] == "application/pdf"
    assert info["file_name"] in original.headers["content-disposition"]
    assert original.content.startswith(b"%PDF")


def test_a_foreign_document_is_404_never_403(served: Served):
    foreign = sorted(served.doc_ids[FINANCE.user])[0]
    with ada(served, "read", "upload") as client:
        for path in ("", "/pages/1", "/pages/1?format=png", "/original"):
            error_of(client.get(f"/api/documents/{foreign}{path}"), 404)
        error_of(client.delete(f"/api/documents/{foreign}"), 404)
        error_of(client.get("/api/documents/no-such-id"), 404)


def test_the_users_collections(served: Served):
    with ada(served) as client:
        mine = client.get("/api/collections").json()
    assert mine == {"searchable": list(ENGINEERING.collections), "uploadable": mine["searchable"]}
    with served.client(served.key(NOBODY)) as client:
        assert client.get("/api/collections").json() == {"searchable": [], "uploadable": []}


# Uploads and jobs ------------------------------------------------------------------------------


def wait_for(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end")


def test_an_upload_becomes_a_job_then_a_document_only_its_user_finds(served: Served):
    collection = own_user(served, "uma")
    pdf = make_pdf(["Quetzal Ledger Rules\n\nEvery quetzal voucher is stamped in violet ink."])
    files = {"files": ("quetzal.pdf", pdf, "application/pdf")}
    form = {"collection": collection, "tags": "ledger, ink"}
    with served.client(served.key("uma", ("read", "upload"))) as uma:
        response = uma.post("/api/documents", files=files, data=form)
        assert response.status_code == 202, response.text
        [queued] = response.json()["jobs"]
        assert queued["file_name"] == "quetzal.pdf" and queued["collection"] == collection
        job = wait_for(uma, queued["job_id"])
        assert job["state"] == "done" and job["report"]["status"] == "added", job
        assert job["report"]["tags"] == ["ledger", "ink"]
        assert queued["job_id"] in {j["job_id"] for j in uma.get("/api/jobs").json()["jobs"]}
        doc_id = job["report"]["doc_id"]
        found = uma.post("/api/search", json={"query": "quetzal voucher violet ink"}).json()
        assert found["passages"][0]["doc_id"] == doc_id
        with ada(served, "read", "upload") as other:
            error_of(other.get(f"/api/jobs/{queued['job_id']}"), 404)
            assert queued["job_id"] not in {
                j["job_id"] for j in other.get("/api/jobs").json()["jobs"]
            }
            theirs = other.post("/api/search", json={"query": "quetzal voucher violet ink"})
            assert doc_id not in {p["doc_id"] for p in theirs.json()["passages"]}
            error_of(other.delete(f"/api/documents/{doc_id}"), 404)
        assert uma.delete(f"/api/documents/{doc_id}").json()["doc_id"] == doc_id
        error_of(uma.get(f"/api/documents/{doc_id}"), 404)


def test_a_new_version_uploaded_as_markdown_and_its_page_view(served: Served):
    collection = own_user(served, "vera")
    old = "# Heron Rules\n\nHeron kayaks are rinsed after every outing."
    new = "# Heron Rules\n\nHeron kayaks are rinsed and dried after every outing."
    with served.client(served.key("vera", ("read", "upload"))) as vera:
        first = vera.post(
            "/api/documents",
            files={"files": ("heron.md", old.encode(), "text/markdown")},
            data={"collection": collection},
        ).json()["jobs"][0]
        earlier = wait_for(vera, first["job_id"])["report"]["doc_id"]
        second = vera.post(
            "/api/documents",
            files={"files": ("heron-v2.md", new.encode(), "text/markdown")},
            data={"collection": collection, "supersedes": earlier},
        ).json()["jobs"][0]
        report = wait_for(vera, second["job_id"])["report"]
        assert report["status"] == "added" and report["supersedes"] == earlier, report
        listed = {d["doc_id"]: d for d in vera.get("/api/documents").json()["documents"]}
        assert listed[earlier]["superseded"] and not listed[report["doc_id"]]["superseded"]
        assert vera.get(f"/api/documents/{earlier}").json()["superseded"]
        page = vera.get(f"/api/documents/{report['doc_id']}/pages/1").json()
        assert "rinsed and dried" in page["text"] and page["place"]["document"] == "heron-v2.md"
        png = vera.get(f"/api/documents/{earlier}/pages/1", params={"format": "png"})
        assert "not a PDF" in error_of(png, 422)
        original = vera.get(f"/api/documents/{earlier}/original")
        assert original.content == old.encode()
        assert original.headers["content-type"].startswith("text/markdown")


def test_uploading_needs_the_upload_scope_and_permission(served: Served):
    pdf = make_pdf(["Nothing to see."])
    files = {"files": ("x.pdf", pdf, "application/pdf")}
    with ada(served) as client:  # read only
        response = client.post("/api/documents", files=files, data={"collection": "Engineering"})
        assert "upload scope" in error_of(response, 403)
        doc_id = sorted(served.doc_ids[ENGINEERING.user])[0]
        assert "upload scope" in error_of(client.delete(f"/api/documents/{doc_id}"), 403)
    with ada(served, "read", "upload") as client:  # no upload rights on Finance
        response = client.post("/api/documents", files=files, data={"collection": "Finance"})
        assert "may not upload" in error_of(response, 403)
    with served.client(served.key(NOBODY, ("read", "upload"))) as client:
        response = client.post("/api/documents", files=files, data={"collection": "Anything"})
        error_of(response, 403)


def test_an_unsupported_type_is_422_naming_the_supported_ones(served: Served):
    before = served.desk.jobs.recent(owner=ENGINEERING.user)
    with ada(served, "read", "upload") as client:
        for name, says in [("notes.exe", ".docx"), ("old.doc", "Save it as .docx")]:
            files = {"files": (name, b"data", "application/octet-stream")}
            response = client.post(
                "/api/documents", files=files, data={"collection": "Engineering"}
            )
            message = error_of(response, 422)
            assert name in message and says in message and ".pdf" in message
        missing = client.post("/api/documents", data={"collection": "Engineering"})
        assert "files" in error_of(missing, 422)
    assert served.desk.jobs.recent(owner=ENGINEERING.user) == before  # nothing queued


@pytest.fixture(scope="module")
def one_mb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A desk of its own whose upload limit is 1 MB: its URL and an uploader's key."""
    desk = Desk(Settings(data_dir=tmp_path_factory.mktemp("one-mb"), max_upload_mb=1))
    role = Role("writer", pages=("knowledge",), collections=("*",), upload_collections=("*",))
    desk.roles.save(role, "test")
    desk.accounts.add("wren", ["writer"], "test", password=PASSWORD)
    _, secret = desk.api_keys.create("wren", "test", ["read", "upload"], expires_days=None)
    server = LiveServer(create_app(desk)).start()
    try:
        yield server.url, secret
    finally:
        server.stop()
        desk.close()


def test_a_file_over_the_upload_limit_is_413_and_nothing_is_queued(one_mb: tuple[str, str]):
    url, secret = one_mb
    big = b"%PDF-1.4\n" + b"0" * (1024 * 1024)
    files = [
        ("files", ("small.txt", b"fine", "text/plain")),
        ("files", ("big.pdf", big, "application/pdf")),
    ]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}) as client:
        response = client.post("/api/documents", files=files, data={"collection": "Docs"})
        message = error_of(response, 413)
        assert "big.pdf" in message and "1 MB" in message and "KDESK_MAX_UPLOAD_MB" in message
        assert client.get("/api/jobs").json() == {"jobs": []}


# Usage -----------------------------------------------------------------------------------------


def test_the_usage_summary_needs_the_analytics_page(served: Served):
    with ada(served) as client:
        client.post("/api/ask", json={"question": probe(TURBINE)})
        figures = client.get("/api/usage/summary", params={"role": ENGINEERING.role})
        assert figures.status_code == 200, figures.text
        assert figures.json()["questions"] >= 1
        assert set(figures.json()["by_role"]) == {ENGINEERING.role}
        bad = client.get("/api/usage/summary", params={"since": "yesterday"})
        error_of(bad, 422)
    with served.client(served.key(NOBODY)) as client:
        error_of(client.get("/api/usage/summary"), 403)
