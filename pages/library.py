"""Knowledge: upload documents (PDF, Office files, web pages, text) into collections (as
background jobs), watch their progress and reports, manage documents."""

import pandas as pd
import streamlit as st

from ingest.reader import LEGACY_SUFFIXES, SUPPORTED_SUFFIXES
from knowledge.core.errors import KdeskError
from knowledge.desk.ingestion import Upload
from knowledge.search.filters import tags_from_text
from pages.jobs import jobs_panel
from pages.shared import page_desk
from pages.versions import (
    earlier_version_id,
    earlier_version_select,
    proposals_panel,
    version_labels,
    versions_panel,
)


def instruction_warning(pages: tuple[int, ...]) -> str:
    if not pages:
        return ""
    listed = ", ".join(str(p) for p in pages[:10])
    return f"⚠️ text addressed to an AI assistant on page(s) {listed} (never obeyed)"


me = page_desk("knowledge")
st.title("📚 Knowledge base")

NEW = "➕ New collection…"
collections = me.upload_collections()  # where the user's roles may upload
with st.form("upload", clear_on_submit=True):
    choice = st.selectbox("Collection", [*collections, NEW], key="collection_choice")
    new_name = st.text_input("New collection name", key="new_collection")
    files = st.file_uploader(
        "Documents",
        # legacy Office files too, so that their report says how to convert them
        type=[s.lstrip(".") for s in (*SUPPORTED_SUFFIXES, *LEGACY_SUFFIXES)],
        accept_multiple_files=True,
        key="files",
        help="PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV, HTML, Markdown, text",
    )
    tag_text = st.text_input(
        "Tags (optional, comma-separated)",
        key="upload_tags",
        placeholder="e.g. policy, travel",
        help="Set on every file uploaded now. Left empty, a replaced document keeps its tags.",
    )
    replaces = earlier_version_select(me)
    as_contracts = st.checkbox(
        "These are contracts (extract key clauses for the Contracts page)", key="as_contracts"
    )
    submitted = st.form_submit_button("Upload and index", type="primary")

if submitted:
    target = new_name.strip() if choice == NEW else choice
    if not target:
        st.error("Give the new collection a name.")
    elif not files:
        st.error("Choose at least one file.")
    else:
        try:
            tags = tags_from_text(tag_text) or None  # a bad tag stops before any file is queued
            earlier = earlier_version_id(me, replaces, target, len(files))
            uploads = [Upload(f.name, f.getvalue(), tags, earlier) for f in files]
            queued = me.submit(uploads, target, contracts=as_contracts)
        except KdeskError as exc:
            st.error(str(exc))
        else:
            st.session_state["queued"] = f"Queued {len(queued)} file(s) for {target}."
            st.rerun()  # so the collection picker lists a collection just created

if message := st.session_state.pop("queued", None):
    st.success(message)
jobs_panel(me)
proposals_panel(me)


def delete(doc_ids: list[str]) -> None:
    """Runs before the rerun, so the widgets can be reset and the message survives it."""
    try:
        for doc_id in doc_ids:
            me.delete_document(doc_id)
    except KdeskError as exc:
        st.session_state["delete_error"] = str(exc)
        return
    st.session_state.update(delete_choice=[], confirm=False)
    st.session_state["deleted"] = f"Deleted {len(doc_ids)} document(s)."


st.subheader("Documents")
if message := st.session_state.pop("deleted", None):
    st.success(message)
if problem := st.session_state.pop("delete_error", None):
    st.error(problem)
documents = me.documents()  # of the collections the user may search
if not documents:
    st.info("No documents yet.")
else:
    table = pd.DataFrame(
        {
            "collection": [d.collection for d in documents],
            "file": [d.file_name for d in documents],
            "title": [d.title for d in documents],
            "tags": [", ".join(d.tags) for d in documents],
            "pages": [d.pages for d in documents],
            "warnings": [instruction_warning(d.instruction_pages) for d in documents],
            "version": version_labels(documents),
            "chunks": [d.chunks for d in documents],
            "ingested at": [d.ingested_at.strftime("%Y-%m-%d %H:%M") for d in documents],
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")
    versions_panel(me, documents)
    deletable = [d for d in documents if me.may_upload(d.collection)]
    labels = {f"{d.collection} / {d.file_name}": d.doc_id for d in deletable}
    doomed = st.multiselect("Delete documents", list(labels), key="delete_choice")
    confirm = st.checkbox("I understand the selected documents will be removed", key="confirm")
    st.button(
        "Delete",
        disabled=not (doomed and confirm),
        type="secondary",
        on_click=delete,
        args=([labels[label] for label in doomed],),
    )
