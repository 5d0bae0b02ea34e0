"""API keys on the Account page (a user's own) and the Admin page (everyone's), through AppTest
over the real stack: the secret shown once, only one's own keys listed, revoking, scopes."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.access.api_keys import InvalidApiKeyError
from knowledge.access.audit import AuditQuery
from knowledge.core.settings import load_settings
from knowledge.desk.root import Desk
from tests.pages.conftest import Configure, ensure_account, open_page
from tests.pages.support import free_port


@pytest.fixture
def data_dir(tmp_path: Path, configure: Configure, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "data"
    configure(data_dir, f"http://127.0.0.1:{free_port()}")  # no model is needed here
    monkeypatch.setenv("KDESK_API_PUBLIC_URL", "https://desk.example.com/")
    ensure_account(data_dir, "ann", ["employee"])
    ensure_account(data_dir, "bruno", ["employee"])
    return data_dir


def stored(data_dir: Path) -> Desk:
    return Desk(load_settings(data_dir=data_dir, model_backend="ollama"))


def create_on_page(at: AppTest, name: str, scopes: list[str] | None = None) -> AppTest:
    at.text_input(key="api_key_name").input(name)
    if scopes is not None:
        at.multiselect(key="api_key_scopes").set_value(scopes)
    at.button(key="FormSubmitter:create_api_key-Create key").click()
    return at.run()


def table(at: AppTest, index: int = -1) -> list[dict]:
    return at.dataframe[index].value.to_dict("records")  # type: ignore[no-any-return]


def test_a_new_key_is_shown_once_and_works(data_dir: Path):
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    assert not at.exception
    assert any("base URL `https://desk.example.com/v1`" in c.value for c in at.caption)
    at = create_on_page(at, "ticket bot", ["read", "upload"])
    assert not at.exception and not at.error
    [code] = at.code
    secret = code.value
    assert secret.startswith("kdesk_") and len(secret) > 40
    assert all(secret not in str(value) for value in at.session_state.values())
    [row] = table(at)
    assert (row["name"], row["scopes"], row["status"]) == ("ticket bot", "read, upload", "active")
    assert row["key"] == secret[:12] + "…" and secret not in str(row)

    key = stored(data_dir).api_keys.authenticate(secret)
    assert (key.user, key.name, key.scopes) == ("ann", "ticket bot", ("read", "upload"))
    assert key.expires_at is not None  # KDESK_API_KEY_DAYS by default

    at.run()  # the next rerun: the secret is gone for good
    assert not at.code and all(secret not in str(v) for v in at.session_state.values())
    assert [r["name"] for r in table(at)] == ["ticket bot"]


def test_never_expiring_key_and_a_bad_name_is_a_clear_error(data_dir: Path):
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    at = create_on_page(at, "   ")
    assert "Give the key a name" in at.error[0].value and not at.code
    at.checkbox(key="api_key_never").check()
    at = create_on_page(at, "forever")
    assert at.code and table(at)[0]["expires"] == "never"


def test_only_ones_own_keys_are_listed(data_dir: Path):
    desk = stored(data_dir)
    desk.api_keys.create("bruno", "bruno's bot", ["read"], expires_days=30)
    desk.api_keys.create("ann", "ann's bot", ["read"], expires_days=30)
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    assert [r["name"] for r in table(at)] == ["ann's bot"]
    options = at.selectbox(key="own_revoke_key").options
    assert len(options) == 1 and "ann's bot" in options[0]


def test_revoke_ones_own_key_after_confirming(data_dir: Path):
    desk = stored(data_dir)
    key, secret = desk.api_keys.create("ann", "old bot", ["read"], expires_days=30)
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    assert at.button(key="own_revoke").disabled, "revoking needs the confirmation"
    at.checkbox(key="own_revoke_sure").check().run()
    at.button(key="own_revoke").click().run()
    assert not at.exception
    assert "Revoked old bot" in at.success[0].value
    assert table(at)[0]["status"] == "revoked"
    with pytest.raises(InvalidApiKeyError, match="revoked"):
        stored(data_dir).api_keys.authenticate(secret)
    assert stored(data_dir).api_keys.key(key.key_id).revoked_by == "ann"


def test_admin_scope_is_offered_only_to_users_with_the_admin_page(data_dir: Path):
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    assert at.multiselect(key="api_key_scopes").options == ["read", "upload"]
    at = open_page("pages/account.py", user="root", roles=["admin"]).run()
    assert at.multiselect(key="api_key_scopes").options == ["read", "upload", "admin"]
    at = create_on_page(at, "key manager", ["read", "admin"])
    assert stored(data_dir).api_keys.keys("root")[0].scopes == ("read", "admin")


def test_admin_lists_everyones_keys_and_revokes_any_as_themselves(data_dir: Path):
    desk = stored(data_dir)
    bruno_key, bruno_secret = desk.api_keys.create("bruno", "bruno's bot", ["read"], expires_days=9)
    desk.api_keys.create("ann", "ann's bot", ["upload"], expires_days=None)
    at = open_page("pages/admin.py", user="root", roles=["admin"]).run()
    assert not at.exception
    owners = {(r["user"], r["name"]) for r in table(at)}
    assert owners == {("bruno", "bruno's bot"), ("ann", "ann's bot")}

    choice = next(o for o in at.selectbox(key="any_revoke_key").options if "bruno" in o)
    at.selectbox(key="any_revoke_key").select(choice)
    at.checkbox(key="any_revoke_sure").check().run()
    at.button(key="any_revoke").click().run()
    assert not at.exception
    status = {r["name"]: r["status"] for r in table(at)}
    assert status == {"bruno's bot": "revoked", "ann's bot": "active"}
    with pytest.raises(InvalidApiKeyError):
        stored(data_dir).api_keys.authenticate(bruno_secret)
    [event] = stored(data_dir).audit.events(AuditQuery(actions=("api_key_revoked",)))
    assert (event.actor, event.target) == ("root", "bruno")
    assert stored(data_dir).api_keys.key(bruno_key.key_id).revoked_by == "root"


def test_admin_page_keys_are_not_for_other_users(data_dir: Path):
    at = open_page("pages/admin.py", user="ann", roles=["employee"]).run()
    assert "do not give access" in at.error[0].value and not at.dataframe
