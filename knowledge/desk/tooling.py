"""A signed-in user's tool box (knowledge.tools.box) from the desk's registry and settings, and
the chat's wiring: every user's chat (knowledge.tools.chatting) gets their own tool box. The
wiring happens once, when this module is first imported (by knowledge.desk.root)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge.tools.base import ToolBox, ToolContext
from knowledge.tools.box import UserToolBox
from knowledge.tools.chatting import NoTools, use_toolboxes

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


def chat_tool_box(context: ToolContext) -> ToolBox:
    """The user's tool box for a ``UserDesk``; none for any other context."""
    tools = getattr(context, "tools", None)
    return tools() if callable(tools) else NoTools()


use_toolboxes(chat_tool_box)
