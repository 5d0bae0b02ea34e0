"""Sample tools for Knowledge Desk: plain LangChain tools, nothing Knowledge Desk specific."""

from __future__ import annotations

from langchain_core.tools import BaseTool, tool

OPENED: list[dict[str, str]] = []  # the tickets opened (a real package would call a tracker)


@tool
def word_count(text: str) -> str:
    """Count the words of a text."""
    return f"{len(text.split())} words"


@tool
def open_ticket(title: str, priority: str = "normal") -> str:
    """Open a support ticket with a title and a priority (low, normal, high)."""
    OPENED.append({"title": title, "priority": priority})
    return f"Opened ticket T-{len(OPENED)}: {title} ({priority})"


open_ticket.metadata = {"acts": True}  # it changes something outside the desk


def ticket_tools() -> list[BaseTool]:
    """An entry point may also name a callable returning a list of tools."""
    return [open_ticket]
