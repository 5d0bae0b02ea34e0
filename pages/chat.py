"""Chat: ask questions, get streamed answers with citations that open their page."""

import streamlit as st

from knowledge.assistant.personas import Turn
from knowledge.core.errors import KdeskError
from knowledge.search.filters import SearchFilter, document_choices, document_tags
from knowledge.tools.turns import ToolTurn
from pages.answers import render_answer
from pages.conversation_list import conversation_sidebar, current_history, keep
from pages.shared import page_desk
from pages.source_link import open_linked_source
from pages.tool_turns import render_turn

me = page_desk("chat")
st.title("💬 Ask the knowledge base")

collections = me.collections()  # only those the user's roles may search
with st.sidebar:
    roles = list(me.access.role_names)
    if len(roles) > 1:  # the personas the user holds
        st.selectbox("Assistant", roles, key="persona", help="Each role answers its own way.")
    chosen = st.multiselect("Search in", collections, default=collections, key="collections")
    if collections and not chosen:
        st.warning("Choose at least one collection to search in.")
    documents = me.documents()  # of the collections the user may search
    choices = document_choices(documents, chosen)  # "collection / file" -> doc id
    with st.expander("Narrow down (optional)"):
        tags = st.multiselect(
            "With any of these tags", document_tags(documents, chosen), key="filter_tags"
        )
        picked = st.multiselect("Only these documents", list(choices), key="filter_documents")
        earlier = st.checkbox(
            "Include earlier versions",
            key="filter_earlier",
            help="Superseded versions are left out unless you pick them or ask about them.",
        )
    where = SearchFilter(
        tuple(choices[p] for p in picked if p in choices), tuple(tags), include_earlier=earlier
    )
    conversation_sidebar(me)

history = current_history(me)
open_linked_source(me)  # a citation's web link from the API: /?source=<doc id>&page=<n>
if not collections and me.may_open("knowledge"):
    st.info("The knowledge base is empty. Upload PDFs on the **Knowledge** page first.")
elif not collections:
    st.info("The knowledge base is empty for your roles. Ask an admin for access.")

tools = me.chat_tools()  # slash commands, and the model's own calls where it makes them
for i, answer in enumerate(history):
    with st.chat_message("user"):
        st.markdown(answer.question)
    with st.chat_message("assistant"):
        if isinstance(answer, ToolTurn):
            render_turn(answer, tools, key=f"a{i}")
        else:
            render_answer(answer, key=f"a{i}")

question = st.chat_input(
    "Ask about a policy, a handbook or a contract… (/tools lists tools)",
    disabled=bool(collections) and not chosen,
)
fresh = not question and bool(question := st.session_state.pop("fresh_question", None))
if question:
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        turns = [Turn(a.question, a.text) for a in history]
        box = st.empty()
        try:
            with box.container(), st.spinner("Thinking…"):
                turn = tools.handle(question, turns)
            if turn is not None:
                history.append(turn)
                with box.container():
                    render_turn(turn, tools, key=f"a{len(history) - 1}")
                st.stop()
            with box.container():
                stream = me.ask(question, chosen, history=turns, where=where, fresh=fresh)
                st.write_stream(stream)
        except KdeskError as exc:
            box.error(str(exc))
        else:
            history.append(stream.answer)
            keep(me, stream.answer, chosen)
            with box.container():
                render_answer(stream.answer, key=f"a{len(history) - 1}")
