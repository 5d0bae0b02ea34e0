"""Sign-in for the app: the gate app.py passes before any page, OIDC, sign-out, navigation
(the local sign-in forms are in pages/sign_in.py).

Who is signed in lives in ``st.session_state["kdesk_auth"]`` as a ``SignedIn`` object, which
only this module and pages/sign_in.py write (server-side; a browser cannot set it). Pages never
trust anything else: they build the user's ``UserDesk`` from it on every run, so role changes
apply at once and a removed account is signed out on its next click.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from knowledge.access.oidc import parse_claim_mapping
from knowledge.core.errors import KdeskError
from knowledge.desk.facade import UserDesk
from knowledge.desk.root import Desk
from pages.sign_in import PENDING_KEY, SESSION_KEY, SignedIn, local_sign_in

PAGE_FILES = {
    "chat": ("pages/chat.py", "Chat", "💬", "chat"),
    "knowledge": ("pages/library.py", "Knowledge", "📚", "knowledge"),
    "contracts": ("pages/contracts.py", "Contracts", "📑", "contracts"),
    "analytics": ("pages/analytics.py", "Analytics", "📊", "analytics"),
    "roles": ("pages/roles.py", "Roles", "🛡️", "roles"),
    "admin": ("pages/admin.py", "Admin", "🔐", "admin"),
}


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
        local_sign_in(desk)
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
    from knowledge.access.oidc import oidc_user_name

    if session is not None and session.user == oidc_user_name(identity):
        return session
    mapping = parse_claim_mapping(desk.settings.oidc_role_mapping)
    try:
        account = desk.accounts.sign_in_oidc(
            identity, mapping, desk.settings.oidc_roles_claim, _client_id(desk)
        )
    except KdeskError as exc:  # refused (and audited): the identity session is ended on request
        st.title("📚 Knowledge Desk")
        st.error(str(exc))
        st.button("Sign in with another account", icon="🔑", on_click=st.logout)
        st.stop()
    session = SignedIn(account.name, "oidc")
    st.session_state[SESSION_KEY] = session
    return session


def _client_id(desk: Desk) -> str:
    """The client_id of the OIDC provider's section in secrets.toml ("" when unreadable)."""
    try:
        section: Any = st.secrets["auth"]
        if desk.settings.oidc_provider:
            section = section[desk.settings.oidc_provider]
        return str(section.get("client_id") or "")
    except (KeyError, FileNotFoundError, StreamlitSecretNotFoundError):
        return ""


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
