"""Single sign-on end to end: `streamlit run app.py` with KDESK_AUTH_MODE=oidc against a real
OpenID Connect provider on loopback (oidc-provider-mock, in a thread of the test process),
driven by Chromium. Streamlit's own sign-in (Authlib) exchanges the code and checks the ID
token; our gate maps its claims to roles.

The provider's users are predefined with their claims; its authorize page offers one button
per user. The mock copies a user's non-standard claims into the ID token it signs, which is how
it issues a token for another audience (``aud``) or one that has expired (``exp``): real
tokens, signed with the provider's own key, that Streamlit must refuse.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import werkzeug.serving
from oidc_provider_mock import User
from oidc_provider_mock import app as provider_app
from playwright.sync_api import expect

from knowledge.access.audit import AuditEvent, AuditLog, AuditQuery
from knowledge.core.db import sqlite_url
from tests.browser.conftest import (
    RunningApp,
    assert_no_automatic_pages,
    browser_tab,
    nav_links,
    nav_now,
    running_app,
)
from tests.db import migrated_engine
from tests.fake_ollama import FakeOllama
from tests.pages.support import MODEL, free_port

pytestmark = pytest.mark.browser

CLIENT_ID = "knowledge-desk"
MAPPING = '{"claims": {"kdesk-admins": ["admin"], "staff": ["employee"]}}'
VERIFIED = {"email_verified": True}
USERS = [
    User(sub="ada", claims={"email": "ada@example.com", **VERIFIED, "groups": ["kdesk-admins"]}),
    User(sub="eve", claims={"email": "eve@example.com", **VERIFIED, "groups": ["staff"]}),
    User(
        sub="mallory",
        claims={"email": "mallory@example.com", "email_verified": False, "groups": ["staff"]},
    ),
    # tokens the provider issues for another client, and already expired ones (past the leeway)
    User(sub="otto", claims={"email": "otto@example.com", **VERIFIED, "aud": "another-client"}),
    # ... and for another client naming this one as authorised party (which Authlib lets pass)
    User(
        sub="otis",
        claims={"email": "otis@example.com", **VERIFIED, "aud": "another-client", "azp": CLIENT_ID},
    ),
    User(
        sub="olga", claims={"email": "olga@example.com", **VERIFIED, "exp": int(time.time()) - 3600}
    ),
]
ADMIN_PAGES = ["Chat", "Knowledge", "Contracts", "Analytics", "Roles", "Admin", "Account"]
SIGN_IN_SCREEN = "Sign in with your company account to continue."


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """The OIDC provider's URL (its issuer)."""
    wsgi = provider_app(user_claims=USERS, require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def sso_app(provider: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    folder = tmp_path_factory.mktemp("sso")
    port = free_port()
    secrets = folder / "secrets.toml"  # the repository's .streamlit/ stays as it is
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a cookie secret for the browser test only"\n'
        f'client_id = "{CLIENT_ID}"\n'
        'client_secret = "the client secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
    )
    env = {"KDESK_AUTH_MODE": "oidc", "KDESK_OIDC_ROLE_MAPPING": MAPPING}
    with (
        FakeOllama(models=[MODEL]) as ollama,
        running_app(folder, ollama, env, ["--secrets.files", str(secrets)], port=port) as app,
    ):
        yield app


@pytest.fixture
def tab(chromium: Path, sso_app: RunningApp) -> Iterator[object]:
    with browser_tab(chromium) as fresh:  # own cookies: nobody is signed in
        yield fresh


def audit(app: RunningApp, actor: str, *actions: str) -> list[AuditEvent]:
    engine = migrated_engine(sqlite_url(app.log.parent / "data" / "kdesk.sqlite3"))
    try:
        return AuditLog(engine).events(AuditQuery(actor=actor, actions=actions))
    finally:
        engine.dispose()


def sign_in_at_the_provider(tab, app: RunningApp, subject: str) -> None:
    """From the app's sign-in screen to the provider's page; there, the user ``subject``."""
    tab.goto(app.url)
    tab.get_by_text(SIGN_IN_SCREEN).wait_for()
    assert_no_automatic_pages(tab)
    assert nav_now(tab) == []
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("heading", name="Authorize Client").wait_for()
    assert CLIENT_ID in tab.content()
    tab.get_by_role("button", name=subject, exact=True).click()


def signed_in_as(tab, user: str) -> None:
    tab.get_by_text(f"Signed in as {user}").wait_for()


def end_the_provider_session(tab, app: RunningApp) -> None:
    """st.logout goes to the provider's end-session page, which sends the browser back."""
    tab.get_by_role("heading", name="End Session").wait_for()
    tab.get_by_role("button", name="End session").click()
    tab.get_by_text(SIGN_IN_SCREEN).wait_for()
    assert tab.url.startswith(app.url)


def wait_for_log(app: RunningApp, since: int, *patterns: str, timeout_s: float = 30) -> str:
    """The app's log from offset ``since`` on, once it holds every pattern."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        new = app.full_output()[since:]
        if all(re.search(p, new) for p in patterns):
            return new
        time.sleep(0.2)
    raise AssertionError(f"not all of {patterns!r} in the app's log:\n{app.output()}")


def test_an_admin_signs_in_gets_the_admin_pages_and_signs_out(tab, sso_app: RunningApp):
    sign_in_at_the_provider(tab, sso_app, "ada")
    signed_in_as(tab, "ada@example.com")
    tab.get_by_role("heading", name="Ask the knowledge base").wait_for()
    expect(nav_links(tab)).to_have_count(len(ADMIN_PAGES))
    assert nav_now(tab) == ADMIN_PAGES
    assert_no_automatic_pages(tab)
    [signed] = audit(sso_app, "ada@example.com", "sign_in")
    assert signed.detail == {"method": "oidc", "roles": ["admin"]}

    nav_links(tab).filter(has_text="Admin").click()
    tab.get_by_role("heading", name="Admin").wait_for()

    tab.get_by_role("button", name="Sign out").click()
    end_the_provider_session(tab, sso_app)
    assert not [c for c in tab.context.cookies() if c["name"].startswith("_streamlit_user")]
    assert len(audit(sso_app, "ada@example.com", "sign_out")) == 1
    tab.reload()  # the identity session is gone, not just this tab's sign-in
    tab.get_by_text(SIGN_IN_SCREEN).wait_for()
    assert nav_now(tab) == [] and tab.get_by_text("Signed in as").count() == 0


def test_an_employee_does_not_get_the_admin_page(tab, sso_app: RunningApp):
    sign_in_at_the_provider(tab, sso_app, "eve")
    signed_in_as(tab, "eve@example.com")
    tab.get_by_role("heading", name="Ask the knowledge base").wait_for()
    expect(nav_links(tab).first).to_be_visible()
    shown = nav_now(tab)
    assert "Chat" in shown and "Account" in shown
    assert "Admin" not in shown and "Roles" not in shown
    assert_no_automatic_pages(tab)
    for typed in ("admin", "roles", "shared", "auth"):  # not pages of hers, or no pages at all
        tab.goto(f"{sso_app.url}/{typed}")
        signed_in_as(tab, "eve@example.com")
        tab.get_by_role("heading", name="Ask the knowledge base").wait_for()  # her first page
        assert tab.url == f"{sso_app.url}/", typed
        assert tab.get_by_role("heading", name="Admin").count() == 0


def test_an_unverified_email_is_refused(tab, sso_app: RunningApp):
    sign_in_at_the_provider(tab, sso_app, "mallory")
    tab.get_by_text("has not verified your e-mail address").wait_for()
    assert tab.get_by_text("Signed in as").count() == 0 and nav_now(tab) == []
    [failed] = audit(sso_app, "mallory@example.com", "sign_in_failed")
    assert failed.outcome == "denied" and failed.detail["reason"] == "email_unverified"
    assert not audit(sso_app, "mallory@example.com", "sign_in")
    tab.get_by_role("button", name="Sign in with another account").click()
    end_the_provider_session(tab, sso_app)


def test_a_token_for_another_client_naming_this_one_as_azp_is_refused_by_us(
    tab, sso_app: RunningApp
):
    sign_in_at_the_provider(tab, sso_app, "otis")
    tab.get_by_text("meant for another application").wait_for()
    assert tab.get_by_text("Signed in as").count() == 0 and nav_now(tab) == []
    [failed] = audit(sso_app, "otis@example.com", "sign_in_failed")
    assert failed.detail["reason"] == "audience"
    assert not audit(sso_app, "otis@example.com", "sign_in")


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("otto", r"MissingClaimError: missing_claim: Missing claim: .azp."),
        ("olga", r"ExpiredTokenError: expired_token"),
    ],
    ids=["wrong-audience", "expired"],
)
def test_a_bad_id_token_is_refused(tab, sso_app: RunningApp, subject: str, reason: str):
    since = len(sso_app.full_output())
    sign_in_at_the_provider(tab, sso_app, subject)
    # Streamlit's callback refuses the token, clears its cookies, sends the browser home
    wait_for_log(sso_app, since, "OAuth token exchange failed", reason)
    tab.wait_for_url(f"{sso_app.url}/")
    tab.get_by_text(SIGN_IN_SCREEN).wait_for()
    assert tab.get_by_text("Signed in as").count() == 0 and nav_now(tab) == []
    assert not [c for c in tab.context.cookies() if c["name"].startswith("_streamlit_user")]
    assert not audit(sso_app, f"{subject}@example.com", "sign_in")
