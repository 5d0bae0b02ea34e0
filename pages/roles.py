"""Roles (admins): create, edit and delete roles, assign them to users, preview a persona's
answer, and retrieve as another user to prove what they can and cannot see."""

import pandas as pd
import streamlit as st

from knowledge.access.roles import (
    PAGES,
    Role,
    banned_phrases_from_rows,
    overview_rows,
    patterns_from_text,
)
from knowledge.assistant.personas import ANSWER_POLICIES, BANNED_ACTIONS, ROUTE_RULES
from knowledge.core.errors import KdeskError
from pages.shared import page_desk

me = page_desk("roles")
st.title("🛡️ Roles")
roles = {role.name: role for role in me.stored_roles()}
NEW = "➕ New role…"
members = {name: me.role_members(name) for name in roles}
st.dataframe(pd.DataFrame(overview_rows(roles.values(), members)), hide_index=True, width="stretch")

edit_tab, users_tab, preview_tab, retrieve_tab = st.tabs(
    ["Edit a role", "Assign users", "Preview a persona", "Retrieve as a user"]
)
with edit_tab:
    choice = st.selectbox("Role", [*roles, NEW], key="role_choice")
    role = roles.get(choice) or Role("", rate_limit=me.stored_role("employee").rate_limit)
    p, limit = role.persona, role.rate_limit
    slot = "new" if choice == NEW else choice  # widget keys: role-new-name, role-sales-pages, ...

    def k(field: str) -> str:
        return f"role-{slot}-{field}"

    with st.form(f"role-{slot}"):
        name = st.text_input("Name", role.name, disabled=choice != NEW, key=k("name"))
        description = st.text_input("Description", role.description, key=k("description"))
        pages = st.multiselect("Pages", PAGES, list(role.pages), key=k("pages"))
        search_label = "May search (patterns, comma-separated; * = all)"
        search = st.text_input(search_label, ", ".join(role.collections), key=k("search"))
        upload_label = "May upload to and delete in"
        upload = st.text_input(upload_label, ", ".join(role.upload_collections), key=k("upload"))
        tools_label = f"May use tools ({', '.join(t.name for t in me.tools().available())}; *: all)"
        tools = st.text_input(tools_label, ", ".join(role.tools), key=k("tools"))
        prompt = st.text_area("System prompt", p.system_prompt, height=120, key=k("prompt"))
        left, middle, right = st.columns(3)
        temperature = left.slider("Temperature", 0.0, 2.0, p.temperature, 0.05, key=k("temp"))
        max_tokens = middle.number_input("Max answer tokens", 16, 8192, p.max_tokens, key=k("max"))
        model = right.text_input("Model (empty: default; BACKEND:MODEL)", p.model, key=k("model"))
        policies = list(ANSWER_POLICIES)
        policy_index = policies.index(p.answer_policy)
        left, right = st.columns(2)
        policy = left.selectbox("Answer policy", policies, policy_index, key=k("policy"))
        routes = list(ROUTE_RULES)
        route_index = routes.index(p.route) if p.route in routes else 0
        route = right.selectbox(
            "Model route (auto: by difficulty)", routes, route_index, key=k("route")
        )
        st.caption("Banned phrases: block_and_rephrase puts in the replacement; refuse withholds.")
        rows = [vars(b) for b in p.banned_phrases]
        banned = st.data_editor(
            pd.DataFrame(rows, columns=["phrase", "action", "replacement"]),
            num_rows="dynamic",
            column_config={"action": st.column_config.SelectboxColumn(options=BANNED_ACTIONS)},
            key=k("banned"),
        )
        left, middle, right = st.columns(3)
        requests = left.number_input("Questions per window", 0, 10**6, limit.requests, key=k("req"))
        tokens = middle.number_input("Tokens per window", 0, 10**9, limit.tokens, key=k("tokens"))
        window = right.number_input("Window (seconds)", 1, 86_400, limit.window_s, key=k("window"))
        st.caption("A limit of 0 means no limit.")
        saved = st.form_submit_button("Save role", type="primary")
    if saved:
        persona = p.__class__(
            name, prompt, temperature, int(max_tokens), model.strip(), policy,
            banned_phrases_from_rows(banned.to_dict("records")), route,
        )  # fmt: skip
        changed = Role(
            name, description, tuple(pages), patterns_from_text(search), patterns_from_text(upload),
            persona, limit.__class__(int(requests), int(tokens), int(window)),
            patterns_from_text(tools),
        )  # fmt: skip
        try:
            me.save_role(changed)
        except KdeskError as exc:
            st.error(str(exc))
        else:
            st.success(f"Saved role {changed.name.lower()}.")
    if choice != NEW:
        sure = st.checkbox(
            f"Delete {choice}: its {len(members[choice])} user(s) lose it", key="sure"
        )
        if st.button("Delete role", disabled=not sure, key="delete_role"):
            try:
                me.delete_role(choice)
                st.rerun()
            except KdeskError as exc:
                st.error(str(exc))

with users_tab:
    accounts = {a.name: a for a in me.accounts()}
    user = st.selectbox("User", list(accounts), key="assign_user")
    if user:
        given = me.role_names_of(user, "admin")
        from_provider = me.role_names_of(user, "oidc")
        chosen = st.multiselect("Roles", list(roles), given, key=f"assign-{user}")
        if from_provider:
            st.caption(f"From the identity provider, at each sign-in: {', '.join(from_provider)}")
        if st.button("Save roles", key="save_assignment"):
            try:
                me.set_user_roles(user, chosen)
                st.success(f"{user}: {', '.join(chosen) or 'no roles'}")
            except KdeskError as exc:
                st.error(str(exc))

with preview_tab:
    persona_role = st.selectbox("Persona", list(roles), key="preview_role")
    question = st.text_input("Test question", key="preview_question")
    if st.button("Preview answer", key="preview") and question.strip():
        stream = me.preview(roles[persona_role], question)
        st.write_stream(stream)
        st.markdown(f"**Final answer:** {stream.answer.text}")
        st.caption(f"{len(stream.answer.citations)} citation(s) · {stream.answer.model}")

with retrieve_tab:
    accounts = {a.name: a for a in me.accounts()}
    other = st.selectbox("Retrieve as", list(accounts), key="retrieve_user")
    query = st.text_input("Query", key="retrieve_query")
    if st.button("Retrieve", key="retrieve") and other and query.strip():
        visible, hits = me.retrieve_as(other, query)
        st.markdown(f"**{other}** can search: {', '.join(visible) or 'nothing'}")
        st.dataframe(
            pd.DataFrame(
                {
                    "collection": [h.chunk.collection for h in hits],
                    "document": [h.chunk.file_name for h in hits],
                    "page": [h.chunk.page_start for h in hits],
                    "score": [h.score for h in hits],
                    "text": [h.chunk.text[:200] for h in hits],
                }
            ),
            hide_index=True,
            width="stretch",
            key="retrieved",
        )
