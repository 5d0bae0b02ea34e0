"""Who sees which page, through AppTest: the sign-in gate (local accounts: bootstrap, one-time
password change, lock-out, sign-out; OIDC with a fake identity), the navigation per role, and
every page refusing a role that does not give it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from knowledge.access.audit import AuditLog, AuditQuery
from knowledge.core.db import sqlite_url
from pages.auth import SESSION_KEY
from tests.db import migrated_engine
from tests.fake_ollama import FakeOllama
from tests.pages.conftest import TEST_PASSWORD, Configure, ensure_account, open_page
from tests.pages.support import free_port

PAGE_FILES = {
    "chat": ("pages/chat.py", "💬 Ask the knowledge base"),
    "knowledge": ("pages/library.py", "📚 Knowledge base"),
    "contracts": ("pages/contracts.py", "📑 Contracts"),
    "analytics": ("pages/analytics.py", "📊 Usage analytics"),
    "roles": ("pages/roles.py", "🛡️ Roles"),
    "admin": ("pages/admin.py", "🔐 Admin"),
}
EXPECTED_PAGES = {
    "employee": {"chat"},
    "support lead": {"chat", "knowledge", "analytics"},
    "manager": {"chat", "knowledge", "contracts", "analytics"},
    "admin": set(PAGE_FILES),
    "tech support": {"chat"},
    "sales": {"chat"},
    "legal": {"chat", "contracts"},
}
NEW_PASSWORD = "my own new password"


def audit(data_dir: Path, **query: object) -> list:
    engine = migrated_engine(sqlite_url(data_dir / "kdesk.sqlite3"))
    return AuditLog(engine).events(AuditQuery(**query))  # type: ignore[arg-type]


def navigation(at: AppTest) -> set[str]:
    """The pages app.py put into the navigation (the account page aside)."""
    files = {Path(str(info.get("script_path"))).name for info in at._registered_pages.values()}
    by_file = {Path(path).name: page for page, (path, _) in PAGE_FILES.items()}
    assert "account.py" in files
    return {by_file[f] for f in files if f in by_file}


@pytest.fixture
def data_dir(tmp_path: Path, configure: Configure) -> Path:
    data_dir = tmp_path / "data"
    configure(data_dir, f"http://127.0.0.1:{free_port()}")  # no model is needed here
    return data_dir


# Page access per role ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(EXPECTED_PAGES))
def test_each_role_sees_exactly_its_pages(role: str, data_dir: Path):
    user = f"user-{role.replace(' ', '-')}"
    at = open_page("app.py", user=user, roles=[role]).run()
    assert not at.exception
    assert navigation(at) == EXPECTED_PAGES[role]
    for page, (path, title) in PAGE_FILES.items():
        direct = open_page(path, user=user, roles=[role]).run()
        assert not direct.exception, (role, page)
        titles = [t.value for t in direct.title]
        if page in EXPECTED_PAGES[role]:
            assert titles == [title], (role, page)
            assert not any("do not give access" in e.value for e in direct.error)
        else:
            assert titles == [] and "do not give access" in direct.error[0].value, (role, page)
    denied = {e.target for e in audit(data_dir, actor=user, actions=("permission_denied",))}
    assert denied == {f"page:{p}" for p in set(PAGE_FILES) - EXPECTED_PAGES[role]}


def test_a_user_without_roles_only_has_the_account_page(data_dir: Path):
    at = open_page("app.py", user="nobody", roles=[]).run()
    assert not at.exception and navigation(at) == set()
    assert [t.value for t in at.title] == ["👤 Your account"]
    assert "no roles yet" in at.warning[0].value


def test_a_page_run_without_sign_in_shows_nothing(data_dir: Path):
    for path, _ in PAGE_FILES.values():
        at = open_page(path, user=None).run()
        assert not at.exception and not at.title
        assert at.warning[0].value == "Please sign in first."


# Local sign-in -----------------------------------------------------------------------------------


def sign_in_with(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="sign_in_user").input(name)
    at.text_input(key="sign_in_password").input(password)
    return at.form_submit_button[0].click().run()


def test_fresh_install_bootstrap_sign_in_and_forced_password_change(
    data_dir: Path, capsys: pytest.CaptureFixture
):
    at = open_page("app.py", user=None).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["📚 Knowledge Desk"] and not at.chat_input
    printed = capsys.readouterr().err
    [password] = re.findall(r"one-time password:\s+(\S+)", printed)
    assert password not in str(at.get("markdown")), "the password is never shown in the browser"

    sign_in_with(at, "admin", "guess")
    assert at.error[0].value == "Wrong user name or password."
    sign_in_with(at, "admin", password)
    assert "Choose your own password" in at.info[0].value and not at.chat_input
    at.text_input(key="new_password").input(NEW_PASSWORD)
    at.text_input(key="new_password_again").input("something else entirely")
    at.form_submit_button[0].click().run()
    assert at.error[0].value == "The two new passwords differ."
    at.text_input(key="new_password").input(NEW_PASSWORD)
    at.text_input(key="new_password_again").input(NEW_PASSWORD)
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["💬 Ask the knowledge base"]
    assert navigation(at) == set(PAGE_FILES)

    from pages.shared import get_desk

    get_desk.clear()
    open_page("app.py", user=None).run()
    assert "one-time password" not in capsys.readouterr().err, "printed once, on creation only"
    actions = [e.action for e in audit(data_dir, actor="admin")]
    assert {"sign_in", "sign_in_failed", "password_changed"} <= set(actions)


def test_lock_out_after_repeated_failures(data_dir: Path):
    ensure_account(data_dir, "ann", ["employee"])
    at = open_page("app.py", user=None).run()
    for _ in range(5):
        sign_in_with(at, "ann", "wrong password")
    sign_in_with(at, "ann", TEST_PASSWORD)
    assert "locked" in at.error[0].value and not at.chat_input
    assert audit(data_dir, actions=("account_locked",))[0].target == "ann"


def test_sign_in_then_sign_out(data_dir: Path):
    ensure_account(data_dir, "ann", ["employee"])
    at = sign_in_with(open_page("app.py", user=None).run(), "ANN", TEST_PASSWORD)
    assert at.chat_input and navigation(at) == {"chat"}
    assert any("Signed in as **ann**" in c.value for c in at.sidebar.caption)
    at.button(key="sign_out").click().run()
    assert not at.chat_input and SESSION_KEY not in at.session_state
    assert audit(data_dir, actor="ann")[0].action == "sign_out"
    assert open_page("app.py", user=None).run().text_input(key="sign_in_user")


def test_change_password_on_the_account_page(data_dir: Path):
    at = open_page("pages/account.py", user="ann", roles=["employee"]).run()
    at.text_input(key="old_password").input(TEST_PASSWORD)
    at.text_input(key="new_password").input(NEW_PASSWORD)
    at.text_input(key="new_password_again").input(NEW_PASSWORD)
    at.form_submit_button[0].click().run()
    assert at.success[0].value == "Your password was changed."
    at = sign_in_with(open_page("app.py", user=None).run(), "ann", NEW_PASSWORD)
    assert at.chat_input


def test_a_removed_account_is_signed_out_on_its_next_click(data_dir: Path):
    at = open_page("app.py", user="ann", roles=["employee"]).run()
    assert at.chat_input
    from knowledge.core.settings import load_settings
    from knowledge.desk.root import Desk

    ensure_account(data_dir, "root", ["admin"])
    Desk(load_settings()).accounts.remove("ann", "root")
    at.run()
    assert not at.chat_input


# OIDC --------------------------------------------------------------------------------------------

MAPPING = '{"claims": {"kdesk-legal": ["legal"]}, "emails": {"*@example.com": ["employee"]}}'


@pytest.fixture
def oidc(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KDESK_AUTH_MODE", "oidc")
    monkeypatch.setenv("KDESK_OIDC_ROLE_MAPPING", MAPPING)
    return data_dir


def test_oidc_not_signed_in_offers_the_provider_sign_in(oidc: Path):
    at = open_page("app.py", user=None)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception and not at.chat_input
    assert [b.label for b in at.button] == ["Sign in"]


def test_oidc_identity_gets_the_roles_its_claims_map_to(oidc: Path):
    at = open_page("app.py", user=None)
    at.user = {
        "is_logged_in": True,
        "email": "Lea@Example.com",
        "email_verified": True,
        "groups": ["kdesk-legal"],
    }
    at.run()
    assert not at.exception
    assert navigation(at) == {"chat", "contracts"}
    assert any("Signed in as **lea@example.com**" in c.value for c in at.sidebar.caption)
    [signed] = audit(oidc, actor="lea@example.com", actions=("sign_in",))
    assert signed.detail["method"] == "oidc" and set(signed.detail["roles"]) == {
        "legal",
        "employee",
    }


def test_oidc_identity_without_mapped_roles_has_no_pages(oidc: Path):
    at = open_page("app.py", user=None)
    at.user = {"is_logged_in": True, "email": "x@elsewhere.org"}
    at.run()
    assert not at.exception and navigation(at) == set()
    assert "no roles yet" in at.warning[0].value


def test_oidc_unverified_email_is_refused_with_a_message_and_audited(oidc: Path):
    at = open_page("app.py", user=None)
    at.user = {
        "is_logged_in": True,
        "sub": "m-1",
        "email": "lea@example.com",
        "email_verified": False,
        "groups": ["kdesk-legal"],
    }
    at.run()
    assert not at.exception and not at.chat_input and not at.sidebar.caption
    assert "not verified your e-mail" in at.error[0].value
    assert SESSION_KEY not in at.session_state
    assert [b.label for b in at.button] == ["Sign in with another account"]
    [failed] = audit(oidc, actions=("sign_in_failed",))
    assert failed.detail["reason"] == "email_unverified" and failed.actor == "lea@example.com"
    assert not audit(oidc, actions=("sign_in",))
    at.button[0].click().run()
    assert at.user == {"is_logged_in": False}, "st.logout() ended the refused identity"


def test_oidc_token_for_another_client_is_refused(oidc: Path):
    at = open_page("app.py", user=None)
    at.secrets["auth"] = {"client_id": "knowledge-desk"}
    at.user = {"is_logged_in": True, "email": "otis@example.com", "aud": "another-client"}
    at.run()
    assert not at.exception and not at.chat_input
    assert "meant for another application" in at.error[0].value
    [failed] = audit(oidc, actions=("sign_in_failed",))
    assert failed.detail["reason"] == "audience"


def test_oidc_sign_out_logs_out_of_the_provider(oidc: Path):
    at = open_page("app.py", user=None)
    at.user = {"is_logged_in": True, "email": "jo@example.com"}
    at.run()
    assert at.chat_input
    at.button(key="sign_out").click().run()
    assert not at.exception and not at.chat_input
    assert at.user == {"is_logged_in": False}, "st.logout() ended the provider's session"
    assert SESSION_KEY not in at.session_state


@pytest.fixture(autouse=True)
def _ollama_unused(ollama: FakeOllama) -> None:
    """The pages build a desk pointing at some model host; none is asked here."""
