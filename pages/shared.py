"""What the pages share: the one cached Desk and a few rendering helpers (no business logic)."""

from __future__ import annotations

import sys

import streamlit as st

from knowledge.cli.access import BOOTSTRAP_NOTICE
from knowledge.core.errors import PermissionDeniedError
from knowledge.core.jsonlog import configure_json_logging
from knowledge.core.metrics import start_metrics_server
from knowledge.core.settings import load_settings
from knowledge.desk.facade import UserDesk
from knowledge.desk.root import Desk
from pages import auth


@st.cache_resource(show_spinner="Loading the knowledge base…", on_release=Desk.close)
def get_desk() -> Desk:
    desk = Desk(load_settings())
    configure_json_logging(desk.settings.log_level)
    # once per process: a rebuilt desk (or a rerun) finds the server already running
    start_metrics_server(desk.settings.metrics_port, desk.settings.metrics_host)
    announce_first_admin(desk)
    # the ingestion jobs (without Redis), indexes refreshed in the background (never in a
    # request) and the model and indexes loaded now rather than in the first question
    desk.start_background()
    return desk


def announce_first_admin(desk: Desk) -> None:
    """A fresh install (local sign-in, no accounts yet): create ``admin`` and print its
    one-time password in the terminal that runs the app - never in the browser."""
    if desk.settings.auth_mode == "local" and (password := desk.accounts.bootstrap()):
        print(BOOTSTRAP_NOTICE.format(password=password), file=sys.stderr, flush=True)


def signed_in_desk() -> UserDesk | None:
    """The signed-in user's desk, or None (for widget callbacks, which cannot stop a page)."""
    desk = get_desk()
    session = auth.signed_in(desk)
    return None if session is None else auth.user_desk(desk, session)


def page_desk(page: str | None) -> UserDesk:
    """The signed-in user's desk for a page their roles must give (None: any signed-in user);
    otherwise a message, and the page stops. app.py lists only permitted pages: this guards
    a page run any other way."""
    me = signed_in_desk()
    if me is None:
        st.warning("Please sign in first.")
        st.stop()
    if page is not None:
        try:
            me.require(page)
        except PermissionDeniedError:
            st.error("Your roles do not give access to this page.")
            st.stop()
    return me
