"""Knowledge Desk: the router. Pages live in pages/, logic in knowledge/."""

import streamlit as st

from pages.shared import get_desk

st.set_page_config(page_title="Knowledge Desk", page_icon="📚", layout="wide")

get_desk()  # fail early, with a clear message, if settings or storage are broken
navigation = st.navigation(
    [
        st.Page("pages/chat.py", title="Chat", icon="💬", default=True),
        st.Page("pages/library.py", title="Knowledge", icon="📚", url_path="knowledge"),
    ]
)
navigation.run()
