"""Chat: ask questions, get streamed answers with citations that open their page."""

import streamlit as st

from knowledge.answering import Turn
from knowledge.errors import KdeskError
from pages.shared import current_requester, get_desk, render_answer

desk = get_desk()
st.title("💬 Ask the knowledge base")

collections = desk.store.collection_names()
with st.sidebar:
    chosen = st.multiselect("Search in", collections, default=collections, key="collections")
    if collections and not chosen:
        st.warning("Choose at least one collection to search in.")
    if st.button("New conversation", icon="🆕"):
        st.session_state["history"] = []

history: list = st.session_state.setdefault("history", [])
if not collections:
    st.info("The knowledge base is empty. Upload PDFs on the **Knowledge** page first.")

for i, answer in enumerate(history):
    with st.chat_message("user"):
        st.markdown(answer.question)
    with st.chat_message("assistant"):
        render_answer(answer, key=f"a{i}")

question = st.chat_input(
    "Ask about a policy, a handbook or a contract…", disabled=bool(collections) and not chosen
)
if question:
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        turns = [Turn(a.question, a.text) for a in history]
        box = st.empty()
        try:
            with box.container():
                stream = desk.ask(question, chosen, history=turns, requester=current_requester())
                st.write_stream(stream)
        except KdeskError as exc:
            box.error(str(exc))
        else:
            history.append(stream.answer)
            with box.container():
                render_answer(stream.answer, key=f"a{len(history) - 1}")
