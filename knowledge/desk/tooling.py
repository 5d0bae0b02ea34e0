"""A signed-in user's tool box (knowledge.tools.box) from the desk's registry and settings, and
``chat_tool_box``, the factory that gives every user's chat (knowledge.tools.chatting) their own
tool box once ``use_toolboxes(chat_tool_box)`` is called. It is not called yet: with tools, the
chat asks a native tool-calling model about every question before the grounded answer (an
extra model call even where the answer abstains without one), a choice for the chat's owner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from knowledge.tools.base import ToolBox, ToolContext
from knowledge.tools.box import UserToolBox
from knowledge.tools.chatting import NoTools

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
