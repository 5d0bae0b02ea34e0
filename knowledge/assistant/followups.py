"""A follow-up question rewritten by the model into a query that can be searched on its own
("Who approves them?" -> "Who approves vacation requests?"). Only a capable served model is
asked (``rewrites_queries`` on the backend); its reply is taken only when it looks like one
question, else the caller keeps its word heuristic."""

from __future__ import annotations

import re
from collections.abc import Sequence

from knowledge.assistant.chat import ChatModel
from knowledge.assistant.citations import strip_citations
from knowledge.assistant.personas import Turn
from knowledge.core.errors import ModelUnavailableError
from knowledge.core.types import Message

REWRITE_TURNS = 3  # the newest turns the model reads
REWRITE_TOKENS = 64
MAX_QUERY_CHARS = 300
REWRITE_PROMPT = (
    "You rewrite the user's last question into one standalone search query. Use the earlier "
    "conversation only to replace pronouns and implied topics with the words they stand for. "
    "Do not answer the question. Do not add facts, explanations or quotes. Reply with the "
    "rewritten question only, on one line."
)
_LABEL = re.compile(r"^(?:standalone\s+)?(?:query|question|rewritten(?:\s+question)?)\s*:\s*", re.I)


def rewrites_queries(model: object) -> bool:
    return bool(getattr(model, "rewrites_queries", False))


def rewrite_messages(question: str, history: Sequence[Turn]) -> list[Message]:
    lines = []
    for turn in history[-REWRITE_TURNS:]:
        lines.append(f"User: {' '.join(turn.question.split())}")
        lines.append(f"Assistant: {' '.join(strip_citations(turn.answer).split())[:300]}")
    conversation = "\n".join(lines)
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nLast question: {question}\n"
            "Standalone question:",
        },
    ]


def model_rewrite(model: ChatModel, question: str, history: Sequence[Turn]) -> str | None:
    """The model's standalone query, or None when it failed or its reply is not one."""
    try:
        reply = "".join(
            model.stream(
                rewrite_messages(question, history), temperature=0.0, max_tokens=REWRITE_TOKENS
            )
        )
    except ModelUnavailableError:
        return None
    return cleaned(reply, question)


def cleaned(reply: str, question: str) -> str | None:
    """The reply's query: its first line without a label or quotes; None when empty, overlong
    or an answer rather than a question (citation marks, several sentences)."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return None
    query = _LABEL.sub("", lines[0]).strip().strip("\"'`“”").strip()
    if not query or len(query) > max(MAX_QUERY_CHARS, 3 * len(question)):
        return None
    if re.search(r"\[\d+\]", query) or len(re.findall(r"[.!?](?:\s|$)", query)) > 1:
        return None
    return query
