"""The Streamlit configuration the app runs with on a server (.streamlit/config.toml)."""

from __future__ import annotations

import tomllib

from streamlit import config as streamlit_config

from knowledge.core.settings import Settings
from tests.pages.support import ROOT

CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def option(name: str) -> object:
    section, key = name.split(".")
    return CONFIG[section][key]


def test_every_option_is_one_streamlit_knows():
    known = set(streamlit_config._config_options_template)
    given = {f"{section}.{key}" for section, keys in CONFIG.items() for key in keys}
    assert given and not given - known, f"unknown Streamlit options: {given - known}"


def test_the_upload_limit_is_the_default_of_kdesk_max_upload_mb():
    assert option("server.maxUploadSize") == Settings.model_fields["max_upload_mb"].default == 200


def test_a_server_setup():
    assert option("browser.gatherUsageStats") is False
    assert option("client.toolbarMode") == "viewer"
    assert option("server.enableXsrfProtection") is True
    assert option("client.showSidebarNavigation") is False, "app.py's navigation only"
    assert option("client.disableDataExport") is True
    assert option("client.showErrorDetails") == "none"
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text().split()
