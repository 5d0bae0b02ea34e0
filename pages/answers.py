"""How an answer is shown: its text, evidence badge, citations that open the page, the closest
passages when it abstains, and the feedback widgets (stored through the user's own desk)."""

from __future__ import annotations

import streamlit as st

from ingest.document import PDF
from ingest.reader import media_type_of
from knowledge.core.errors import KdeskError, PermissionDeniedError
from knowledge.core.types import Answer, Citation
from knowledge.search.viewer import highlighted_markdown, page_count, page_text, render_page
from pages.shared import page_desk, signed_in_desk

COMPLIANCE_NOTE = {
    "rephrased": "Some wording was replaced to follow this assistant's answering rules.",
    "refused": "This answer was withheld: it would have broken this assistant's answering rules.",
}
EVIDENCE_BADGE = {
    "strong": "",
    "weak": ":orange-badge[Weak evidence — check the sources]",
    "none": ":gray-badge[Not in the knowledge base]",
}


@st.dialog("Source", width="large")
def show_source(citation: Citation) -> None:
    chunk = citation.chunk
    try:
        document = page_desk("chat").document(chunk.doc_id)  # only a document the user may read
    except KdeskError as exc:
        st.error(str(exc))
        return
    if chunk.media_type != PDF:
        show_passage(citation)
    else:
        show_pdf_page(citation, document.pdf_path)
    try:
        with open(document.pdf_path, "rb") as original:
            data = original.read()
    except OSError:
        st.error("The original file is no longer stored.")
        return
    kind = media_type_of(chunk.file_name)
    st.download_button("Download the original", data, chunk.file_name, kind)


def show_pdf_page(citation: Citation, pdf_path: str) -> None:
    chunk = citation.chunk
    pages = page_count(pdf_path)
    page = st.number_input("Page", 1, pages, citation.page, key=f"page-{chunk.id}")
    st.caption(f"**{chunk.title}** · {chunk.file_name} · page {page} of {pages}")
    if int(page) in chunk.ocr_pages:
        confidence = chunk.ocr_pages[int(page)]
        st.caption(f"This page is a scan: its text was read by OCR ({confidence:.0f}% confidence).")
    with st.expander("Cited passage", expanded=True):
        st.markdown(f"> {citation.quote}")
    try:
        st.image(render_page(pdf_path, int(page)), width="stretch")
    except KdeskError as exc:
        st.error(str(exc))


def show_passage(citation: Citation) -> None:
    """Other formats: the cited passage highlighted within its slide's, section's or rows'
    text, pieced together from the stored chunks."""
    chunk = citation.chunk
    path = " › ".join(chunk.heading_path)
    where = chunk.cited_as(citation.page, "page")
    st.caption(f"**{chunk.title}** · {chunk.file_name} · {where}" + (f" · {path}" if path else ""))
    chunks = page_desk("chat").document_chunks(chunk.doc_id)
    text, start, end = page_text(chunks, citation.page, chunk)
    with st.container(border=True, height=480):
        st.markdown(highlighted_markdown(text, start, end), unsafe_allow_html=True)


def render_answer(answer: Answer, key: str) -> None:
    if answer.error:
        st.error(f"The model did not answer: {answer.error}")
    if answer.quoted and answer.dropped and not answer.abstained:
        st.warning(
            "The model's answer could not be checked against the sources, so here is what they say."
        )
    elif answer.dropped and not answer.abstained:
        st.caption(f"{answer.dropped} sentence(s) the sources do not support were left out.")
    if answer.verdict == "model":
        st.info("The model read the closest passages and found no answer in them.")
    if answer.compliance:
        st.info(COMPLIANCE_NOTE[answer.compliance], icon="🛡️")
    st.markdown(answer.text)
    badge = EVIDENCE_BADGE[answer.evidence if not answer.abstained else "none"]
    timing = f"{answer.total_ms / 1000:.1f}s"
    if answer.first_token_ms is not None:
        timing = f"first token {answer.first_token_ms / 1000:.1f}s · total {timing}"
    for note in answer.notes:
        st.warning(note)
    kept = ":blue-badge[cached]" if answer.cached else ""
    st.caption(f"{badge}{kept} Answered by `{answer.model}` · {timing}", help=answer.route_reason)
    if answer.cached and st.button("Fresh answer", key=f"{key}-fresh", icon="🔄"):
        st.session_state["fresh_question"] = answer.question
        st.rerun()
    for c in answer.citations:
        label = f"[{c.n}] {c.chunk.title} — {c.chunk.cited_as(c.page, 'page')}"
        if st.button(label, key=f"{key}-cite-{c.n}", type="tertiary", icon="📄"):
            show_source(c)
    if answer.abstained and answer.sources:
        with st.expander("Closest passages found"):
            for s in answer.sources[:3]:
                st.markdown(f"**{s.chunk.file_name}**, {s.chunk.cited_as(page_word='page')}")
                st.caption(s.chunk.text[:400])
    if answer.event_id:
        render_feedback(answer.event_id)


def render_feedback(event_id: str) -> None:
    """Thumbs up/down and, once rated, an optional comment; both stored on the usage event.
    The session remembers them, so the widgets show them again after a page switch."""
    key = f"feedback-{event_id}"
    given = st.session_state.setdefault("feedback", {}).get(event_id, {})
    rating = st.feedback(
        "thumbs", key=key, default=given.get("rating"), on_change=_save_feedback, args=(event_id,)
    )
    if rating is not None:
        st.text_input(
            "Comment (optional)",
            value=given.get("comment", ""),
            key=f"{key}-comment",
            placeholder="What was wrong or missing?" if rating == 0 else "Anything to add?",
            on_change=_save_feedback,
            args=(event_id,),
        )


def _save_feedback(event_id: str) -> None:
    key = f"feedback-{event_id}"
    value = st.session_state.get(key)
    comment = st.session_state.get(f"{key}-comment")
    rating = None if value is None else "up" if value == 1 else "down"
    try:
        me = signed_in_desk()
        if me is None:
            raise PermissionDeniedError("Please sign in again.")
        me.feedback(event_id, rating, comment)  # only the user's own answers
    except KdeskError as exc:
        st.toast(f"Your feedback could not be saved: {exc}", icon="⚠️")
        return
    st.session_state["feedback"][event_id] = {"rating": value, "comment": comment or ""}
