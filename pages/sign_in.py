"""The local sign-in forms: user name and password, the forced change of a one-time password,
changing one's own password. Who is signed in is a ``SignedIn`` in
``st.session_state[SESSION_KEY]``, written only here and in pages/auth.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import streamlit as st

from knowledge.access.accounts import SignInError
from knowledge.core.errors import KdeskError
from knowledge.desk.root import Desk

SESSION_KEY = "kdesk_auth"
PENDING_KEY = "kdesk_password_change"  # (user, one-time password) until a new one is chosen


@dataclass(frozen=True)
class SignedIn:
    user: str
    method: str  # "local" or "oidc"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def local_sign_in(desk: Desk) -> None:
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
