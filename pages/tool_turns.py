"""How a turn with tools is shown: each call in an expander (name, arguments, result and its
citations), the answer, and a call that acts with Confirm / Cancel (the turn itself, kept in
the chat history of the session, remembers it is waiting)."""

from __future__ import annotations

import json
from collections.abc import Callable

import streamlit as st

from knowledge.core.errors import KdeskError
from knowledge.core.types import Citation
from knowledge.tools.base import ToolCall, ToolOutcome
from knowledge.tools.chatting import ChatTools
from knowledge.tools.turns import ToolTurn
from pages.answers import show_source

OUTCOME_ICON = {"ok": "🔧", "cancelled": "🚫", "needs_confirmation": "⏸️"}


def call_label(call: ToolCall) -> str:
    return f"{call.name} {json.dumps(dict(call.arguments), ensure_ascii=False)}"


def render_turn(turn: ToolTurn, tools: ChatTools, key: str) -> None:
    for n, step in enumerate(turn.steps):
        render_step(step, key=f"{key}-{n}")
    if turn.error:
        st.error(turn.error)
    if turn.pending is not None:
        render_pending(turn, tools, key)
    elif turn.text:
        st.markdown(turn.text)
        if turn.model:
            st.caption(f"Answered by `{turn.model}` with tools")


def render_step(step: ToolOutcome, key: str) -> None:
    icon = OUTCOME_ICON.get(step.outcome, "⚠️")
    with st.expander(f"{icon} {call_label(step.call)}", expanded=False):
        st.caption(f"Tool **{step.call.name}** · {step.outcome} · {step.duration_ms:.0f} ms")
        st.code(json.dumps(dict(step.call.arguments), indent=2, ensure_ascii=False), "json")
        if step.result is not None:
            st.markdown(step.result.text)
            for n, chunk in enumerate(step.result.citations, start=1):
                cited = Citation(n, chunk, 0.0, chunk.text[:450], chunk.page_start)
                label = f"[{n}] {chunk.title} — {chunk.cited_as(page_word='page')}"
                if st.button(label, key=f"{key}-cite-{n}", type="tertiary", icon="📄"):
                    show_source(cited)
        elif step.message:
            st.warning(step.message)


def render_pending(turn: ToolTurn, tools: ChatTools, key: str) -> None:
    call = turn.pending
    assert call is not None
    arguments = json.dumps(dict(call.arguments), ensure_ascii=False)
    st.info(f"The assistant wants to run **{call.name}** with `{arguments}`", icon="✋")
    confirm, cancel = st.columns(2)
    if confirm.button("Confirm", key=f"{key}-confirm", type="primary", icon="✅"):
        _settle(tools.confirm, turn)
    if cancel.button("Cancel", key=f"{key}-cancel", icon="✖️"):
        _settle(tools.cancel, turn)


def _settle(action: Callable[[ToolTurn], ToolTurn], turn: ToolTurn) -> None:
    try:
        action(turn)  # clears turn.pending before the call runs: a rerun cannot run it again
    except KdeskError as exc:
        turn.error = str(exc)
    st.rerun()
