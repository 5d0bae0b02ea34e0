"""API keys on the Account page (a user's own) and the Admin page (everyone's): widgets over
``UserDesk.api_keys`` (knowledge/desk/api_keys.py), nothing else.

A new key's secret exists only in the run that created it: it is a local variable shown with
st.code, never put in st.session_state, so the next rerun (or a reload) no longer has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from knowledge.access.api_keys import SCOPES, ApiKey
from knowledge.core.errors import KdeskError
from knowledge.desk.facade import UserDesk
from pages.shared import signed_in_desk


def _when(moment: datetime | None, empty: str = "–") -> str:
    return empty if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def key_table(keys: Sequence[ApiKey], *, with_user: bool = False) -> pd.DataFrame:
    now = datetime.now(UTC)
    rows = [
        ({"user": k.user} if with_user else {})
        | {
            "name": k.name,
            "key": f"{k.shown}…",
            "id": k.key_id,
            "scopes": ", ".join(k.scopes),
            "created": _when(k.created_at),
            "expires": _when(k.expires_at, "never"),
            "last used": _when(k.last_used_at, "never"),
            "status": k.status(now),
        }
        for k in keys
    ]
    return pd.DataFrame(rows)


def _label(key: ApiKey, *, with_user: bool) -> str:
    owner = f"{key.user}: " if with_user else ""
    return f"{owner}{key.name} ({key.shown}…, {key.key_id})"


def revoke_form(keys: Sequence[ApiKey], *, prefix: str, with_user: bool) -> None:
    """Pick an active key, confirm, revoke it (as the signed-in user: audited as them)."""
    if note := st.session_state.pop(f"{prefix}_revoke_note", None):
        getattr(st, note[0])(note[1])
    active = [k for k in keys if k.revoked_at is None]
    if not active:
        return
    labels = {k.key_id: _label(k, with_user=with_user) for k in active}
    left, middle, right = st.columns([3, 1, 1])
    chosen = left.selectbox(
        "Key to revoke", list(labels), format_func=labels.__getitem__, key=f"{prefix}_revoke_key"
    )
    sure = middle.checkbox("Really revoke", key=f"{prefix}_revoke_sure")
    right.button(
        "Revoke",
        key=f"{prefix}_revoke",
        disabled=not (chosen and sure),
        on_click=_revoke,
        args=(prefix,),
    )


def _revoke(prefix: str) -> None:
    """The Revoke button's callback: it runs before the page does, so the tables show the
    key revoked; the outcome is shown by the next run of revoke_form."""
    me = signed_in_desk()  # as signed in now (a callback cannot stop the page)
    if me is None:
        return
    try:
        revoked = me.api_keys.revoke(st.session_state[f"{prefix}_revoke_key"])
    except KdeskError as exc:
        st.session_state[f"{prefix}_revoke_note"] = ("error", str(exc))
        return
    st.session_state[f"{prefix}_revoke_sure"] = False
    note = f"Revoked {revoked.name} ({revoked.shown}…): it no longer works."
    st.session_state[f"{prefix}_revoke_note"] = ("success", note)


def create_form(me: UserDesk) -> None:
    """Name, scopes (admin only for users with the admin page), expiry; the secret once."""
    default_days = me.desk.settings.api_key_days
    offered = [s for s in SCOPES if s != "admin" or me.may_open("admin")]
    with st.form("create_api_key", clear_on_submit=True):
        name = st.text_input("Name", key="api_key_name", placeholder="e.g. ticket bot")
        scopes = st.multiselect("Scopes", offered, default=["read"], key="api_key_scopes")
        left, right = st.columns(2)
        days = left.number_input(
            "Expires after (days)", 1, 3650, default_days or 90, key="api_key_days"
        )
        never = right.checkbox("Never expires", value=default_days == 0, key="api_key_never")
        created = st.form_submit_button("Create key", type="primary")
    if not created:
        return
    try:
        key, secret = me.api_keys.create(name, scopes, expires_days=None if never else int(days))
    except KdeskError as exc:
        st.error(str(exc))
        return
    st.success(f"Created {key.name}. Copy the key now (the copy icon at its right):")
    st.code(secret, language=None)
    st.caption("It is shown only this once: it is stored hashed and cannot be shown again.")


def own_keys(me: UserDesk) -> None:
    """The Account page's section: the user's keys, a new one, revoking one."""
    st.subheader("API keys")
    url = me.desk.settings.api_url
    st.caption(
        "Other programs (the OpenAI-compatible API, the REST API, MCP) act as you with a key: "
        f"your roles and collections, capped by the key's scopes. OpenAI clients: base URL "
        f"`{url}/v1`; REST: `{url}/api` (docs: `{url}/docs`); MCP: `{url}/mcp`."
    )
    create_form(me)  # first: the table below then lists a key created in this run
    keys = me.api_keys.mine()
    if keys:
        st.dataframe(key_table(keys), hide_index=True, width="stretch")
    else:
        st.caption("You have no API keys yet.")
    revoke_form(keys, prefix="own", with_user=False)


def everyone_keys(me: UserDesk) -> None:
    """The Admin page's section: every user's keys; revoking any (audited as the admin)."""
    keys = me.api_keys.everyone()
    if not keys:
        st.caption("Nobody has an API key yet.")
        return
    st.dataframe(key_table(keys, with_user=True), hide_index=True, width="stretch")
    revoke_form(keys, prefix="any", with_user=True)
