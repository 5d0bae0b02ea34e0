"""The Knowledge page's version parts: the earlier version an upload replaces, the proposals
of uploads whose title matches a current document, a document's version chain, what changed
between two versions, and marking an existing document as another's new version."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from knowledge.core.errors import KdeskError
from knowledge.core.types import DocumentInfo
from knowledge.desk.facade import UserDesk

NONE = "— none —"


def label(doc: DocumentInfo) -> str:
    return f"{doc.collection} / {doc.file_name}"


def version_labels(documents: list[DocumentInfo]) -> list[str]:
    """For the documents table: "superseded" for an earlier version, "current" for the
    newest of a chain, "" for a document without versions."""
    earlier = {d.supersedes for d in documents if d.supersedes}
    return [
        "superseded" if d.doc_id in earlier else "current" if d.supersedes else ""
        for d in documents
    ]


def earlier_version_select(me: UserDesk) -> str:
    """In the upload form: the document the uploaded file replaces (a label, or NONE)."""
    choices = [label(d) for d in me.documents() if me.may_upload(d.collection)]
    return st.selectbox(
        "Replaces an earlier version (optional)",
        [NONE, *choices],
        key="upload_supersedes",
        help="Answers then come from the new file; the earlier one stays for questions "
        "about it and in the version history.",
    )


def earlier_version_id(me: UserDesk, choice: str, collection: str, files: int) -> str | None:
    """The doc id the upload supersedes; KdeskError when the choice does not fit it."""
    if choice == NONE:
        return None
    if files != 1:
        raise KdeskError("Upload one file as the new version of a document.")
    doc = next((d for d in me.documents() if label(d) == choice), None)
    if doc is None:
        raise KdeskError(f"{choice} is no longer stored.")
    if doc.collection != collection:
        raise KdeskError(
            f"{doc.file_name} is in {doc.collection}: upload its new version to that collection."
        )
    return doc.doc_id


def _confirm(me: UserDesk, doc_id: str, earlier_id: str) -> None:
    try:
        doc = me.versions.supersede(doc_id, earlier_id)
    except KdeskError as exc:
        st.session_state["version_error"] = str(exc)
    else:
        st.session_state["version_done"] = f"{doc.file_name} is now the current version."


def proposals_panel(me: UserDesk) -> None:
    """The user's uploads that look like a new version of a document, to confirm."""
    for proposal in me.versions.proposals():
        doc, earlier = proposal.document, proposal.earlier
        st.info(f"{doc.file_name} looks like a new version of {earlier.file_name}.")
        st.button(
            f"Confirm: {doc.file_name} replaces {earlier.file_name}",
            key=f"confirm_version_{doc.doc_id}",
            on_click=_confirm,
            args=(me, doc.doc_id, earlier.doc_id),
        )


def versions_panel(me: UserDesk, documents: list[DocumentInfo]) -> None:
    done = st.session_state.pop("version_done", None)
    problem = st.session_state.pop("version_error", None)
    earlier = {d.supersedes for d in documents if d.supersedes}
    linked = {label(d): d.doc_id for d in documents if d.supersedes or d.doc_id in earlier}
    with st.expander("Versions", expanded=bool(linked or done or problem)):
        if done:
            st.success(done)
        if problem:
            st.error(problem)
        if linked:
            picked = st.selectbox("Version history of", list(linked), key="version_doc")
            _chain(me, linked[picked])
        else:
            st.caption("No document has an earlier version yet.")
        _link_form(me, documents)


def _chain(me: UserDesk, doc_id: str) -> None:
    chain = me.versions.chain(doc_id)
    names = [f"v{n}: {d.file_name}" for n, d in enumerate(chain, start=1)]
    st.markdown(" → ".join(names) + " (current)")
    table = pd.DataFrame(
        {
            "version": [f"v{n}" for n in range(1, len(chain) + 1)],
            "file": [d.file_name for d in chain],
            "title": [d.title for d in chain],
            "ingested at": [d.ingested_at.strftime("%Y-%m-%d %H:%M") for d in chain],
            "status": ["superseded"] * (len(chain) - 1) + ["current"],
        }
    )
    st.dataframe(table, hide_index=True, width="stretch")
    st.markdown("**What changed**")
    left, right = st.columns(2)
    old = left.selectbox("From", names, index=len(names) - 2, key="diff_from")
    new = right.selectbox("To", names, index=len(names) - 1, key="diff_to")
    by_name = dict(zip(names, chain, strict=True))
    changes = me.versions.changes(by_name[old].doc_id, by_name[new].doc_id)
    if not changes:
        st.caption("No section differs.")
    for change in changes:
        st.markdown(f"**{change.kind}**: {change.section} ({change.pages})")
        st.code("\n".join(change.diff()), language="diff")


def _link_form(me: UserDesk, documents: list[DocumentInfo]) -> None:
    changeable = [label(d) for d in documents if me.may_upload(d.collection)]
    if len(changeable) < 2:
        return
    by_label = {label(d): d.doc_id for d in documents}
    with st.form("link_version"):
        st.markdown("**Mark a document as the new version of another**")
        new = st.selectbox("New version", changeable, key="link_new")
        old = st.selectbox("Replaces", changeable, index=1, key="link_old")
        if st.form_submit_button("Mark as new version"):
            _confirm(me, by_label[new], by_label[old])
            st.rerun()
