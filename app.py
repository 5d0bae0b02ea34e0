"""Knowledge Desk: the router. Pages live in pages/, logic in knowledge/."""

import streamlit as st

from knowledge.errors import KdeskError
from knowledge.usage import can_view_analytics
from pages.shared import get_desk

st.set_page_config(page_title="Knowledge Desk", page_icon="📚", layout="wide")

try:
    get_desk()  # fail early, with a clear message, if settings or storage are broken
except KdeskError as exc:
    st.error(f"Knowledge Desk cannot start. {exc}")
    st.stop()
analytics_pages = (
    [st.Page("pages/analytics.py", title="Analytics", icon="📊", url_path="analytics")]
    if can_view_analytics(st.session_state.get("role"))
    else []
)
navigation = st.navigation(
    [
        st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
        st.Page("pages/library.py", title="Knowledge", icon="📚", url_path="knowledge"),
        st.Page("pages/contracts.py", title="Contracts", icon="📑", url_path="contracts"),
    ]
    + analytics_pages
)
navigation.run()
