"""What a tool is, what calling one gives back, and the user's view of the desk a tool runs in.

Every source of tools (built in, entry-point plugins wrapping LangChain tools, MCP servers,
admins' webhooks) is converted at its edge to ``Tool``; everything above (permissions,
confirmation, the chat, the CLI) sees only these types."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from knowledge.contracts.book import ClauseFilter, ClauseRecord
from knowledge.core.errors import KdeskError
from knowledge.core.types import Chunk, DocumentInfo, Requester, ScoredChunk
from knowledge.search.filters import SearchFilter


class ToolError(KdeskError):
    """A tool refused its arguments or failed; ``str(err)`` is shown to the user."""


@dataclass(frozen=True)
class ToolSpec:
    """What a model and a user are told about a tool."""

    name: str  # [a-z0-9_-]{1,64}: how models and slash commands call it
    description: str
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )  # JSON schema of the arguments (an object)
    acts: bool = False  # changes something outside the desk: each call needs the user's yes
    source: str = "builtin"  # "builtin", "plugin:<distribution>", "mcp:<server>", "webhook"


@dataclass(frozen=True)
class ToolResult:
    text: str  # what the model and the user read
    citations: tuple[Chunk, ...] = ()  # the passages the result rests on, cited like answers
    data: Any = None  # the structured result, for the page or the API


class ToolContext(Protocol):
    """The signed-in user's view of the desk (``knowledge.desk.facade.UserDesk``): a tool sees
    only the collections and documents this user may."""

    @property
    def requester(self) -> Requester: ...

    def collections(self) -> list[str]: ...

    def documents(self) -> list[DocumentInfo]: ...

    def document_chunks(self, doc_id: str) -> list[Chunk]: ...

    def search(
        self,
        query: str,
        collections: Sequence[str] | None = None,
        k: int | None = None,
        *,
        where: SearchFilter | None = None,
    ) -> list[ScoredChunk]: ...

    def clause_records(self, where: ClauseFilter | None = None) -> list[ClauseRecord]: ...


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    def run(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult: ...


class ToolSource(Protocol):
    """Where tools come from (a plugin package, an MCP server): listed when the desk starts."""

    @property
    def name(self) -> str: ...

    def tools(self) -> list[Tool]: ...


Outcome = Literal["ok", "failed", "timeout", "denied", "needs_confirmation", "cancelled"]


@dataclass(frozen=True)
class ToolCall:
    """A model's (or a slash command's) request to call a tool."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    call_id: str = ""  # the backend's id of the call, echoed back with the result


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    outcome: Outcome
    result: ToolResult | None = None
    message: str = ""  # why it failed, timed out, was denied, or what the user must confirm
    duration_ms: float = 0.0


class ToolBox(Protocol):
    """The tools one signed-in user may use, and the one way to call them: permission,
    confirmation of tools that act, timeout, audit, usage event and metrics happen here."""

    def available(self) -> list[ToolSpec]: ...

    def call(self, call: ToolCall, *, confirmed: bool = False) -> ToolOutcome: ...


@dataclass(frozen=True)
class FunctionTool:
    """A tool made of its spec and a function (the built-in tools, tests' doubles)."""

    spec: ToolSpec
    function: Callable[[ToolContext, Mapping[str, Any]], ToolResult]

    def run(self, context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        return self.function(context, arguments)


class ToolTimeout(ToolError):
    """A tool (a webhook, an MCP server) did not answer within its time limit."""
