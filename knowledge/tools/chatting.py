"""Tools in the chat, for one signed-in user: what the Chat page calls with what was typed.

``ChatTools.handle(text)`` answers a slash command (any backend), or lets a model that calls
tools natively decide (Ollama, OpenAI-compatible); it gives None when the question is for the
grounded answer path (no tool was called, no tools, or the embedded model). The turn it gives
back may wait for the user's confirmation: ``confirm`` / ``cancel`` go on with it.

A user gets their own tool box (``UserDesk.tools()``); ``use_toolboxes(factory)`` replaces
that everywhere (tests give a double)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from knowledge.assistant.chat import ChatModel
from knowledge.assistant.personas import Turn
from knowledge.core.errors import KdeskError
from knowledge.core.settings import Settings
from knowledge.tools.base import ToolBox, ToolCall, ToolContext, ToolOutcome, ToolSpec
from knowledge.tools.native import ChatTurn, tool_caller
from knowledge.tools.slash import SlashUsageError, is_slash, parse_slash, tool_list
from knowledge.tools.turns import ToolTurn, TurnRunner

ToolBoxFactory = Callable[[ToolContext], ToolBox]


class NoTools:
    def available(self) -> list[ToolSpec]:
        return []

    def call(self, call: ToolCall, *, confirmed: bool = False) -> ToolOutcome:
        return ToolOutcome(call, "denied", message=f"There is no tool {call.name!r} for you.")


def own_toolbox(context: ToolContext) -> ToolBox:
    """The context's own tool box (``UserDesk.tools()``: what the user's roles give); none for
    a context without one."""
    tools = getattr(context, "tools", None)
    return tools() if callable(tools) else NoTools()


_factory: ToolBoxFactory = own_toolbox


def use_toolboxes(factory: ToolBoxFactory) -> ToolBoxFactory:
    """Give every user's chat the tool box ``factory`` makes; returns the one it replaces."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def toolbox_for(context: ToolContext) -> ToolBox:
    return _factory(context)


class ChatTools:
    def __init__(self, box: ToolBox, runner: TurnRunner) -> None:
        self.box = box
        self.runner = runner

    @classmethod
    def for_user(
        cls,
        context: ToolContext,
        model: ChatModel | Callable[[], ChatModel],
        settings: Settings,
        box: ToolBox | None = None,
    ) -> ChatTools:
        """``model`` may be a function building it: a model that cannot be built (a missing
        GGUF file) leaves slash commands working, and the question's answer says what is wrong.
        The model decides on tools only with ``settings.tool_planning``."""
        box = box if box is not None else toolbox_for(context)
        try:
            chat = model() if callable(model) else model
        except KdeskError:
            chat = None
        runner = TurnRunner(
            box,
            tool_caller(chat) if chat is not None and settings.tool_planning else None,
            max_rounds=settings.tool_rounds,
            max_tokens=settings.max_answer_tokens,
        )
        return cls(box, runner)

    @property
    def native(self) -> bool:
        """Whether the model itself may decide to call tools."""
        return self.runner.model is not None

    def handle(self, text: str, history: Sequence[Turn] = ()) -> ToolTurn | None:
        """A slash command's turn, the model's turn when it called tools, else None: the
        question is for the grounded answer path (the model's reply is dropped)."""
        if is_slash(text):
            return self.slash(text)
        if not self.native or not self.box.available():
            return None
        earlier: list[ChatTurn] = []
        for turn in history[-2:]:  # as the grounded prompt carries them
            earlier.append({"role": "user", "content": turn.question})
            earlier.append({"role": "assistant", "content": turn.answer[:300]})
        started = self.runner.start(text, earlier)
        return started if started.called_tools else None

    def slash(self, text: str) -> ToolTurn:
        tools = self.box.available()
        try:
            command = parse_slash(text, tools)
        except SlashUsageError as exc:
            return ToolTurn(text, error=str(exc))
        if command.call is None:
            return ToolTurn(text, text=tool_list(tools))
        return self.runner.run_call(text, command.call)

    def confirm(self, turn: ToolTurn) -> ToolTurn:
        return self.runner.confirm(turn)

    def cancel(self, turn: ToolTurn) -> ToolTurn:
        return self.runner.cancel(turn)
