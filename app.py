"""Knowledge Desk: the router. Nobody passes the sign-in gate anonymously; the navigation lists
only the pages the user's roles give. Pages live in pages/, logic in knowledge/."""

import streamlit as st

from knowledge.core.errors import KdeskError
from pages import auth
from pages.shared import get_desk

st.set_page_config(page_title="Knowledge Desk", page_icon="📚", layout="wide")
# Tables' own CSV download (and copy) would hand a spreadsheet =formulas typed into questions,
# clauses or names: downloads are the pages' export buttons, which write such text as text.
st.set_option("client.disableDataExport", True)

try:
    desk = get_desk()  # fail early, with a clear message, if settings or storage are broken
except KdeskError as exc:
    st.error(f"Knowledge Desk cannot start. {exc}")
    st.stop()
me = auth.gate(desk)  # the sign-in form (and nothing else) until someone signs in
# Drawn here with page links, not by st.navigation: with a pages/ folder Streamlit lists every
# module in it until the script reaches st.navigation (on the sign-in screen, all the time).
# .streamlit/config.toml turns that list off (client.showSidebarNavigation), which hides any
# sidebar navigation, so this one is "hidden" and the links below are the menu.
pages = auth.allowed_pages(me)
navigation = st.navigation(pages, position="hidden")
with st.sidebar:
    for page in pages:
        st.page_link(page)
    st.caption(f"Signed in as **{me.user}** · {', '.join(me.access.role_names) or 'no roles'}")
    st.button("Sign out", icon="🚪", key="sign_out", on_click=auth.sign_out, args=(desk,))
navigation.run()
