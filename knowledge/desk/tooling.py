"""A signed-in user's tool box (knowledge.tools.box) from the desk's registry and settings: what
``UserDesk.tools()`` gives, and so the chat's slash commands and (with ``KDESK_TOOL_PLANNING``)
the model's own tool calls (knowledge.tools.chatting)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge.tools.box import UserToolBox

if TYPE_CHECKING:
    from knowledge.desk.facade import UserDesk


def tool_box(user: UserDesk) -> UserToolBox:
    desk = user.desk
    return UserToolBox(
        desk.tool_registry,
        user,
        user.access.may_use_tool,
        audit=desk.audit,
        calls=desk.tool_calls,
        timeout_s=desk.settings.tool_timeout_s,
    )
