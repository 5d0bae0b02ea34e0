"""Admin: user accounts (add, unlock, reset a password, remove), the audit log, everyone's API
keys."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from knowledge.access.audit import AUDIT_ACTIONS, AuditQuery, audit_csv, audit_rows
from knowledge.core.errors import KdeskError
from pages import api_keys
from pages.shared import page_desk

me = page_desk("admin")
st.title("🔐 Admin")
users_tab, audit_tab, keys_tab = st.tabs(["Users", "Audit log", "API keys"])


def run(action, *args: object) -> tuple[bool, object]:  # type: ignore[no-untyped-def]
    """An admin action: (done, its result); an error is shown instead of raised."""
    try:
        return True, action(*args)
    except KdeskError as exc:
        st.error(str(exc))
        return False, None


with users_tab:
    accounts = me.accounts()
    now = datetime.now(UTC)
    st.dataframe(
        pd.DataFrame(
            {
                "user": [a.name for a in accounts],
                "sign-in": [a.auth for a in accounts],
                "roles": [", ".join(a.roles) for a in accounts],
                "state": [
                    "locked"
                    if a.locked(now)
                    else "must change password"
                    if a.must_change_password
                    else "ok"
                    for a in accounts
                ],
                "last sign-in": [a.last_sign_in for a in accounts],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    with st.form("add_user", clear_on_submit=True):
        st.subheader("Add a user")
        name = st.text_input("User name (or e-mail)", key="new_user")
        roles = st.multiselect("Roles", me.role_names(), key="new_user_roles")
        added = st.form_submit_button("Add user", type="primary")
    done, password = run(me.add_user, name, roles) if added else (False, None)
    if done:
        st.success(f"Added {name.strip().lower()}. Give them this one-time password:")
        st.code(str(password), language=None)
        st.caption("It is shown only now and must be changed at the first sign-in.")
    names = [a.name for a in accounts]
    chosen = st.selectbox("Account", names, key="manage_user")
    left, middle, right = st.columns(3)
    if left.button("Unlock", key="unlock", disabled=not chosen) and run(me.unlock_user, chosen)[0]:
        st.success(f"{chosen} can sign in again.")
    if middle.button("Reset password", key="reset", disabled=not chosen) and chosen:
        done, password = run(me.reset_password, chosen)
        if done:
            st.success(f"One-time password for {chosen}:")
            st.code(str(password), language=None)
    sure = right.checkbox("Really remove", key="sure_remove")
    removing = right.button("Remove user", key="remove", disabled=not (chosen and sure))
    if removing and run(me.remove_user, chosen)[0]:
        st.rerun()

with audit_tab:
    left, middle, right = st.columns(3)
    today = datetime.now(UTC).date()
    period = left.date_input("Period (UTC)", (today - timedelta(days=7), today), key="audit_period")
    actions = middle.multiselect("Actions", AUDIT_ACTIONS, key="audit_actions", placeholder="All")
    actor = right.text_input("User", key="audit_actor")
    since, until = (period[0], period[-1]) if period else (None, None)
    query = AuditQuery(since, until, actor.strip().lower() or None, tuple(actions), limit=5000)
    events = me.audit_events(query)
    st.dataframe(pd.DataFrame(audit_rows(events)), hide_index=True, width="stretch")
    st.download_button(
        "Export (CSV)", audit_csv(events), "kdesk-audit.csv", "text/csv", icon="⬇️", key="audit_csv"
    )

with keys_tab:
    api_keys.everyone_keys(me)
