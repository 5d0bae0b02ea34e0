"""The service's common ground: keys authenticate, errors are JSON, scopes cap a key."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from knowledge.access.api_keys import ApiKeyBook, InvalidApiKeyError, parse_scopes
from knowledge.core.db import utc_now
from knowledge.core.errors import KdeskError
from tests.leaks import ENGINEERING
from tests.service.conftest import Served


def test_health_needs_no_key(served: Served):
    with served.client(None) as client:
        assert client.get("/health").json() == {"status": "ok"}


def test_the_openapi_schema_is_served(served: Served):
    with served.client(None) as client:
        schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "Knowledge Desk API"


def test_a_key_is_shown_once_and_stored_hashed(served: Served):
    key, secret = served.desk.api_keys.create(ENGINEERING.user, "bot", "read", expires_days=30)
    assert secret.startswith("kdesk_") and len(secret) > 40
    assert key.shown == secret[:12] and key.scopes == ("read",)
    with served.desk.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM api_keys").fetchall()
    assert not any(secret in str(row) for row in rows)
    assert served.desk.api_keys.authenticate(secret).key_id == key.key_id


def test_revoked_expired_and_wrong_keys_are_refused(served: Served):
    book = served.desk.api_keys
    key, secret = book.create(ENGINEERING.user, "old", "read", expires_days=None)
    book.revoke(key.key_id, ENGINEERING.user)
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        book.authenticate(secret)
    later = ApiKeyBook(book.engine, book.audit, clock=lambda: utc_now() + timedelta(days=2))
    _, soon = book.create(ENGINEERING.user, "short", "read", expires_days=1)
    with pytest.raises(InvalidApiKeyError, match="expired"):
        later.authenticate(soon)
    for wrong in (None, "", "Bearer", "kdesk_not-a-key", secret[:-1]):
        with pytest.raises(InvalidApiKeyError):
            book.authenticate(wrong)


def test_scopes_are_checked_when_a_key_is_made():
    assert parse_scopes("upload, read") == ("read", "upload")
    with pytest.raises(KdeskError, match="Unknown scope"):
        parse_scopes("read,write")
    with pytest.raises(KdeskError, match="at least one"):
        parse_scopes("")


def test_only_admins_make_admin_keys_and_revoke_others_keys(served: Served):
    ada = served.desk.for_user(ENGINEERING.user)
    with pytest.raises(KdeskError):
        ada.api_keys.create("mine", ["read", "admin"])
    key, _ = ada.api_keys.create("mine", ["read"])
    root = served.desk.for_user("root")
    admin_key, _ = root.api_keys.create("ops", ["read", "admin"])
    assert root.api_keys.revoke(key.key_id).revoked_by == "root"
    with pytest.raises(KdeskError, match="No API key"):
        ada.api_keys.revoke(admin_key.key_id)


def test_errors_are_json_with_a_message(served: Served):
    with served.client(None) as client:
        response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"message": "Not Found", "type": "not_found_error", "code": 404}
    }


def test_removing_a_user_revokes_their_keys(served: Served):
    desk = served.desk
    desk.accounts.add("temp-api-user", [], "test", password="a long temporary password")
    _, secret = desk.api_keys.create("temp-api-user", "bot", "read", expires_days=None)
    assert desk.api_keys.authenticate(secret).user == "temp-api-user"
    desk.accounts.remove("temp-api-user", "root")
    desk.accounts.add("temp-api-user", [], "test", password="a long temporary password")
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        desk.api_keys.authenticate(secret)


def test_the_docs_pages_load_nothing_from_the_internet(served: Served):
    with served.client(None) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page).text
            assert "/openapi.json" in html
            scripts = re.findall(r'(?:src|href)="([^"]+)"', html)
            assert scripts and all(s.startswith("/") for s in scripts), scripts
            for url in scripts:
                assert client.get(url).status_code == 200, url


def test_requests_are_counted_by_route_template(served: Served):
    def count(route: str, status: str) -> float:
        value = REGISTRY.get_sample_value(
            "kdesk_api_requests_total", {"method": "GET", "route": route, "status": status}
        )
        return value or 0.0

    before = count("/health", "200"), count("unmatched", "404")
    with served.client(None) as client:
        client.get("/health")
        client.get("/no/such/route/1")
        client.get("/no/such/route/2")
    assert (count("/health", "200"), count("unmatched", "404")) == (before[0] + 1, before[1] + 2)
