"""One chat turn with tools: the model asks for tools, the tool box runs them, the results go
back to the model, until it answers (at most ``max_rounds`` rounds of calls).

A call the tool box says ``needs_confirmation`` stops the turn: ``ToolTurn.pending`` holds it for
the user, who confirms (``TurnRunner.confirm``: run with ``confirmed=True`` and go on) or cancels
(``TurnRunner.cancel``: the model is told, and answers without it). A tool that fails, times out
or is denied does not end the turn: the model and the user are told why, and the answer goes on.
Without a model (a slash command) the turn is the one call and its result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from knowledge.core.errors import ModelUnavailableError
from knowledge.core.types import Chunk
from knowledge.tools.base import ToolBox, ToolCall, ToolOutcome
from knowledge.tools.native import ChatTurn, ToolCallingModel

SYSTEM = (
    "You are a helpful assistant at a company's knowledge desk. Call a tool only when the user's "
    "request needs one; otherwise answer directly and briefly. After a tool's result, answer "
    "the user from it."
)
NO_ANSWER = "The model gave no answer after the tools ran."


@dataclass
class ToolTurn:
    question: str
    messages: list[ChatTurn] = field(default_factory=list)  # the conversation with the model
    steps: list[ToolOutcome] = field(default_factory=list)  # every call and how it went
    text: str = ""  # the answer, once the turn is done
    pending: ToolCall | None = None  # waits for the user's confirm or cancel
    queued: list[ToolCall] = field(default_factory=list)  # later calls of the pending's round
    rounds: int = 0
    model: str = ""  # "" when no model took part (a slash command)
    error: str | None = None  # the model failed: what the user reads

    @property
    def done(self) -> bool:
        return self.pending is None

    @property
    def called_tools(self) -> bool:
        return bool(self.steps or self.pending)

    @property
    def citations(self) -> list[Chunk]:
        found = [c for s in self.steps if s.result is not None for c in s.result.citations]
        return list({c.id: c for c in found}.values())


def outcome_text(outcome: ToolOutcome) -> str:
    """What the model (and the user) is told a call gave."""
    name = outcome.call.name
    if outcome.outcome == "ok" and outcome.result is not None:
        return outcome.result.text
    if outcome.outcome == "cancelled":
        return f"The user cancelled the call of {name}; it did not run."
    reason = outcome.message or outcome.outcome
    return f"The tool {name} did not run ({outcome.outcome}): {reason}"


class TurnRunner:
    def __init__(
        self,
        box: ToolBox,
        model: ToolCallingModel | None = None,
        *,
        max_rounds: int = 3,
        max_tokens: int = 400,
        system: str = SYSTEM,
    ) -> None:
        self.box = box
        self.model = model
        self.max_rounds = max_rounds
        self.max_tokens = max_tokens
        self.system = system

    def start(self, question: str, history: Sequence[ChatTurn] = ()) -> ToolTurn:
        """Let the model decide; a turn whose model calls no tool has ``called_tools`` False
        (the caller answers it the grounded way instead)."""
        if self.model is None:
            raise ValueError("a turn without a model runs slash commands only (run_call)")
        messages: list[ChatTurn] = [{"role": "system", "content": self.system}, *history]
        messages.append({"role": "user", "content": question})
        turn = ToolTurn(question, messages, model=self.model.name)
        return self._go_on(turn)

    def run_call(self, question: str, call: ToolCall) -> ToolTurn:
        """A call the user typed (a slash command): run it, without a model."""
        turn = ToolTurn(question)
        self._run_calls(turn, [call])
        if turn.done:
            turn.text = outcome_text(turn.steps[-1])
        return turn

    def confirm(self, turn: ToolTurn) -> ToolTurn:
        return self._settle(turn, self.box.call(self._take_pending(turn), confirmed=True))

    def cancel(self, turn: ToolTurn) -> ToolTurn:
        call = self._take_pending(turn)
        return self._settle(turn, ToolOutcome(call, "cancelled", message="You cancelled it."))

    def _take_pending(self, turn: ToolTurn) -> ToolCall:
        if turn.pending is None:
            raise ValueError("this turn has no call waiting for confirmation")
        call, turn.pending = turn.pending, None
        return call

    def _settle(self, turn: ToolTurn, outcome: ToolOutcome) -> ToolTurn:
        if outcome.outcome == "needs_confirmation":  # confirmed, yet still refused: say so
            outcome = replace(outcome, outcome="denied", message=outcome.message or "not run")
        self._record(turn, outcome)
        queued, turn.queued = turn.queued, []
        if not self._run_calls(turn, queued):
            return turn
        if not turn.model or self.model is None:  # a slash command's call: its result
            turn.text = outcome_text(turn.steps[-1])
            return turn
        return self._go_on(turn)

    def _go_on(self, turn: ToolTurn) -> ToolTurn:
        assert self.model is not None
        while True:
            last_round = turn.rounds >= self.max_rounds
            specs = [] if last_round else self.box.available()  # the last word is an answer
            try:
                plan = self.model.plan(turn.messages, specs, max_tokens=self.max_tokens)
            except ModelUnavailableError as exc:
                turn.error = str(exc)
                return turn
            if not plan.calls or last_round:
                turn.text = plan.text.strip() or (NO_ANSWER if turn.steps else "")
                return turn
            turn.rounds += 1
            turn.messages.append(self.model.assistant_calls(plan.calls))
            if not self._run_calls(turn, list(plan.calls)):
                return turn

    def _run_calls(self, turn: ToolTurn, calls: list[ToolCall]) -> bool:
        """Run ``calls`` in order; False when one waits for the user (the rest are queued)."""
        for n, call in enumerate(calls):
            outcome = self.box.call(call)
            if outcome.outcome == "needs_confirmation":
                turn.pending, turn.queued = call, calls[n + 1 :]
                return False
            self._record(turn, outcome)
        return True

    def _record(self, turn: ToolTurn, outcome: ToolOutcome) -> None:
        turn.steps.append(outcome)
        if self.model is not None and turn.model:
            turn.messages.append(self.model.tool_message(outcome.call, outcome_text(outcome)))
