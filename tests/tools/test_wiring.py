"""The desk's wiring of tools: the factory that gives a user's chat their own tool box, and the
admins' tools file joining the registry without ever stopping the desk."""

from __future__ import annotations

import logging
from pathlib import Path

from knowledge.access.roles import READ_TOOLS
from knowledge.desk.root import Desk
from knowledge.tools.box import UserToolBox
from knowledge.tools.chatting import NoTools, own_toolbox, toolbox_for


def test_the_chat_factory_gives_a_user_their_tool_box(office: Desk):
    box = toolbox_for(office.for_user("hanna"))  # what the chat uses
    assert isinstance(box, UserToolBox)
    assert tuple(s.name for s in box.available()) == READ_TOOLS
    assert isinstance(own_toolbox(object()), NoTools)  # type: ignore[arg-type]


def test_a_broken_tools_file_is_logged_and_the_other_tools_stay(
    office: Desk, tmp_path: Path, caplog
):
    broken = tmp_path / "tools.toml"
    broken.write_text("[[webhooks]]\nname = 'no url'\n")
    office.settings = office.settings.model_copy(update={"tools_file": broken})
    office.tool_registry.sources[2].settings = office.settings  # the tools file's source
    office.tool_registry.refresh()
    with caplog.at_level(logging.ERROR, logger="kdesk.tools"):
        names = set(office.tool_registry.tools())
    assert set(READ_TOOLS) <= names
    assert any(r.getMessage() == "tool source skipped" for r in caplog.records)
