"""Account: who you are signed in as, what your roles allow, your password, your API keys,
signing out."""

import streamlit as st

from pages import api_keys, auth, sign_in
from pages.shared import page_desk

me = page_desk(None)  # every signed-in user
st.title("👤 Your account")
account = me.account()
st.markdown(f"Signed in as **{me.user}**" + (f" ({account.auth})" if account else ""))

if not me.access.roles:
    st.warning("You have no roles yet, so there is nothing to open. Ask an admin for access.")
else:
    rows = [
        {
            "role": role.name,
            "pages": ", ".join(role.pages),
            "may search": ", ".join(role.collections) or "–",
            "may upload to": ", ".join(role.upload_collections) or "–",
            "answers": role.persona.answer_policy.replace("_", " "),
            "limit": role.rate_limit.describe(),
        }
        for role in me.access.roles
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Collections you can search now: {', '.join(me.collections()) or 'none'}")

if account is not None and account.auth == "local":
    st.subheader("Change your password")
    if sign_in.password_form(me.desk, me.user):
        st.success("Your password was changed.")

api_keys.own_keys(me)
st.button("Sign out", icon="🚪", key="account_sign_out", on_click=auth.sign_out, args=(me.desk,))
