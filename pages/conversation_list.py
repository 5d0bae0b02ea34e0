"""The chat sidebar's kept conversations: the user's own, newest first, to resume, rename or
delete; the open one is named in the URL (``?c=<id>``) so a reload reopens it."""

from __future__ import annotations

import streamlit as st

from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.core.types import Answer
from knowledge.desk.conversations import model_line
from knowledge.desk.facade import UserDesk

CURRENT = "conversation"


def current_history(me: UserDesk) -> list[Answer]:
    """The session's history; after a reload (or a link) the conversation in ``?c=``."""
    wanted = st.query_params.get("c")
    if wanted and st.session_state.get(CURRENT) != wanted:
        try:
            st.session_state["history"] = me.conversations.answers(wanted)
            st.session_state[CURRENT] = wanted
        except NotFoundError:
            st.query_params.pop("c", None)
            st.warning("That conversation no longer exists.")
    return st.session_state.setdefault("history", [])


def open_conversation(conversation_id: str | None) -> None:
    st.session_state[CURRENT] = None
    st.session_state["history"] = []
    if conversation_id is None:
        st.query_params.pop("c", None)
    else:
        st.query_params["c"] = conversation_id  # loaded by current_history on the rerun


def keep(me: UserDesk, answer: Answer, collections: list[str]) -> None:
    """Store an answered turn, starting a conversation with the first one."""
    conversation_id = st.session_state.get(CURRENT)
    if conversation_id is None:
        conversation_id = me.conversations.start(answer.question, collections).id
        st.session_state[CURRENT] = conversation_id
        st.query_params["c"] = conversation_id
    try:
        me.conversations.append(conversation_id, answer)
    except NotFoundError:  # deleted meanwhile (another tab, the retention): keep it anew
        st.session_state[CURRENT] = None
        keep(me, answer, collections)


def conversation_sidebar(me: UserDesk) -> None:
    if st.button("New conversation", icon="🆕"):
        open_conversation(None)
    st.caption(model_line(me))
    kept = me.conversations.recent()
    if not kept:
        return
    current = st.session_state.get(CURRENT)
    st.caption("Your conversations")
    for c in kept[:30]:
        if c.id == current:
            _manage(me, c.id, c.title)
        elif st.button(c.title, key=f"conv-{c.id}", type="tertiary", icon="💬"):
            open_conversation(c.id)
            st.rerun()


def _manage(me: UserDesk, conversation_id: str, title: str) -> None:
    with st.expander(f"**{title}**", expanded=False, icon="💬"):
        name = st.text_input("Title", title, key=f"title-{conversation_id}")
        left, right = st.columns(2)
        try:
            if left.button("Rename", key=f"rename-{conversation_id}") and name != title:
                me.conversations.rename(conversation_id, name)
                st.rerun()
            if right.button("Delete", key=f"delete-{conversation_id}", type="primary"):
                me.conversations.delete(conversation_id)
                open_conversation(None)
                st.rerun()
        except KdeskError as exc:
            st.error(str(exc))
