"""Sign-in for the app: the gate app.py passes before any page, the forms, sign-out.

Who is signed in lives in ``st.session_state["kdesk_auth"]`` as a ``SignedIn`` object, which
only this module writes (server-side; a browser cannot set it). Pages never trust anything else:
they build the user's ``UserDesk`` from it on every run, so role changes apply at once and a
removed account is signed out on its next click.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st

from knowledge.access import UserDesk
from knowledge.accounts import SignInError, parse_claim_mapping
from knowledge.desk import Desk
from knowledge.errors import KdeskError

SESSION_KEY = "kdesk_auth"
PENDING_KEY = "kdesk_password_change"  # (user, one-time password) until a new one is chosen
PAGE_FILES = {
    "chat": ("pages/chat.py", "Chat", "💬", "chat"),
    "knowledge": ("pages/library.py", "Knowledge", "📚", "knowledge"),
    "contracts": ("pages/contracts.py", "Contracts", "📑", "contracts"),
    "analytics": ("pages/analytics.py", "Analytics", "📊", "analytics"),
    "roles": ("pages/roles.py", "Roles", "🛡️", "roles"),
    "admin": ("pages/admin.py", "Admin", "🔐", "admin"),
}


@dataclass(frozen=True)
class SignedIn:
    user: str
    method: str  # "local" or "oidc"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def signed_in(desk: Desk) -> SignedIn | None:
    """The session's sign-in, unless it is missing, forged or older than KDESK_SESSION_HOURS."""
    found = st.session_state.get(SESSION_KEY)
    if not isinstance(found, SignedIn):
        return None
    if datetime.now(UTC) - found.at > timedelta(hours=desk.settings.session_hours):
        st.session_state.pop(SESSION_KEY, None)
        return None
    return found


def user_desk(desk: Desk, session: SignedIn) -> UserDesk:
    """The signed-in user's desk, answering in the persona chosen in the chat (if theirs)."""
    me = desk.for_user(session.user, channel="chat")
    chosen = st.session_state.get("persona")
    return (
        me
        if me.access.role(chosen) is None
        else desk.for_user(session.user, role=chosen, channel="chat")
    )


def oidc_identity() -> dict[str, Any] | None:
    """The claims of the identity Streamlit's OIDC sign-in vouches for (None: not signed in).
    One small function, so tests can hand in a fake identity (AppTest.user works too)."""
    try:
        if not st.user.is_logged_in:
            return None
        return dict(st.user.to_dict())
    except (AttributeError, KeyError):
        return None


def gate(desk: Desk) -> UserDesk:
    """The signed-in user's desk; otherwise the sign-in (or forced password change) is shown
    and the script stops here."""
    session = signed_in(desk)
    if desk.settings.auth_mode == "oidc":
        session = _oidc_session(desk, session)
    elif session is None or st.session_state.get(PENDING_KEY):
        _local_sign_in(desk)
        st.stop()
    assert session is not None
    if desk.accounts.account(session.user) is None:  # removed while signed in
        sign_out(desk, audited=False)
        st.rerun()
    return user_desk(desk, session)


def _oidc_session(desk: Desk, session: SignedIn | None) -> SignedIn:
    identity = oidc_identity()
    if identity is None:
        st.session_state.pop(SESSION_KEY, None)
        st.title("📚 Knowledge Desk")
        st.write("Sign in with your company account to continue.")
        if st.button("Sign in", type="primary", icon="🔑"):
            st.login(desk.settings.oidc_provider or None)
        st.stop()
    from knowledge.accounts import oidc_user_name

    if session is not None and session.user == oidc_user_name(identity):
        return session
    mapping = parse_claim_mapping(desk.settings.oidc_role_mapping)
    try:
        account = desk.accounts.sign_in_oidc(identity, mapping, desk.settings.oidc_roles_claim)
    except KdeskError as exc:
        st.error(str(exc))
        st.stop()
    session = SignedIn(account.name, "oidc")
    st.session_state[SESSION_KEY] = session
    return session


def _local_sign_in(desk: Desk) -> None:
    st.title("📚 Knowledge Desk")
    pending = st.session_state.get(PENDING_KEY)
    if pending:
        _forced_change(desk, *pending)
        return
    with st.form("sign_in"):
        st.subheader("Sign in")
        name = st.text_input("User name", key="sign_in_user")
        password = st.text_input("Password", type="password", key="sign_in_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        account = desk.accounts.authenticate(name, password, channel="web")
    except SignInError as exc:
        st.error(str(exc))
        return
    if account.must_change_password:
        st.session_state[PENDING_KEY] = (account.name, password)
    else:
        st.session_state[SESSION_KEY] = SignedIn(account.name, "local")
    st.rerun()


def _forced_change(desk: Desk, user: str, one_time: str) -> None:
    st.info(f"Welcome, **{user}**. Choose your own password to finish signing in.")
    if _password_form(desk, user, one_time):
        st.session_state.pop(PENDING_KEY, None)
        st.session_state[SESSION_KEY] = SignedIn(user, "local")
        st.rerun()


def password_form(desk: Desk, user: str) -> bool:
    """Change one's own password (the current one is asked for); True once changed."""
    return _password_form(desk, user, None)


def _password_form(desk: Desk, user: str, current: str | None) -> bool:
    minimum = desk.settings.password_min_length
    with st.form("change_password", clear_on_submit=True):
        old = current or st.text_input("Current password", type="password", key="old_password")
        new = st.text_input(
            f"New password (at least {minimum} characters)", type="password", key="new_password"
        )
        again = st.text_input("New password again", type="password", key="new_password_again")
        submitted = st.form_submit_button("Change password", type="primary")
    if not submitted:
        return False
    if new != again:
        st.error("The two new passwords differ.")
        return False
    try:
        desk.accounts.change_password(user, old, new, channel="web")
    except KdeskError as exc:
        st.error(str(exc))
        return False
    return True


def sign_out(desk: Desk, *, audited: bool = True) -> None:
    """Forget the sign-in and what the session holds (a button's on_click: the run that
    follows already shows the sign-in); with OIDC, also end the provider's session."""
    session = st.session_state.get(SESSION_KEY)
    if audited and isinstance(session, SignedIn):
        desk.audit.record(session.user, "sign_out", session.user, channel="web")
    for key in (SESSION_KEY, PENDING_KEY, "history", "feedback", "persona"):
        st.session_state.pop(key, None)
    if desk.settings.auth_mode == "oidc" and oidc_identity() is not None:
        st.logout()


def allowed_pages(me: UserDesk) -> list[Any]:
    """The pages the user's roles give (the first is the default), then their account page."""
    pages = [
        st.Page(path, title=title, icon=icon, url_path=url, default=not i)
        for i, (path, title, icon, url) in enumerate(
            PAGE_FILES[p] for p in PAGE_FILES if me.may_open(p)
        )
    ]
    account = st.Page(
        "pages/account.py", title="Account", icon="👤", url_path="account", default=not pages
    )
    return [*pages, account]
