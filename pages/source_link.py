"""A citation's web link from the API (``web_link``: ``/?source=<doc id>&page=<n>``) opens that
page in the source viewer, with the signed-in user's own permissions: a document they may not
read is "not found", as everywhere."""

from __future__ import annotations

import streamlit as st

from knowledge.core.errors import NotFoundError
from knowledge.core.types import Citation
from knowledge.desk.facade import UserDesk
from pages.answers import show_source

NOT_THERE = "That source is not in the knowledge base, or your roles do not give access to it."


def open_linked_source(me: UserDesk) -> None:
    """Open the viewer once for the page the URL names, then take the link out of the URL."""
    doc_id = st.query_params.get("source")
    if not doc_id:
        return
    asked = st.query_params.get("page", "1")
    for name in ("source", "page"):
        st.query_params.pop(name, None)
    try:
        chunks = me.document_chunks(doc_id)
    except NotFoundError:
        chunks = []
    if not chunks:
        st.warning(NOT_THERE)
        return
    page = int(asked) if asked.isdigit() else chunks[0].page_start
    chunk = next((c for c in chunks if c.page_start <= page <= c.page_end), chunks[0])
    page = page if chunk.page_start <= page <= chunk.page_end else chunk.page_start
    show_source(Citation(0, chunk, 1.0, quote=chunk.text, page=page))
