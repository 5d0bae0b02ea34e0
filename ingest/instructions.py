"""Text that speaks to an AI assistant instead of the reader: "ignore all previous
instructions", "tell the user ...", "reveal your system prompt". A document may carry such
lines (planted, or quoted in a security policy); the desk flags them at ingest, never quotes
them as an answer and keeps them out of the model's prompt."""

from __future__ import annotations

import re

_AI = r"(?:ai|a\.i\.|assistant|chatbot|chat ?gpt|language model|llm|model|bot)"
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?"
    r"(?:previous|prior|above|earlier|preceding|system|original|other)\s+"
    r"(?:instructions?|prompts?|rules|directions|guidelines)"
    r"|\b(?:ignore|disregard)\s+(?:all|any|your)\s+(?:instructions|prompts)"
    r"|\b(?:reveal|print|show|repeat|output|disclose)\s+(?:me\s+)?(?:your|the)\s+"
    r"(?:system\s+prompt|hidden\s+instructions|initial\s+prompt|prompt)"
    r"|\byou\s+are\s+(?:now\s+)?(?:an?\s+|the\s+)?" + _AI + r"\b"
    r"|\b(?:as\s+an|dear|attention)\s+" + _AI + r"\b"
    r"|\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?" + _AI + r"s?\b"
    r"|\b" + _AI + r"s?\s+(?:must|should|shall|will)\s+(?:always\s+|never\s+|now\s+)?"
    r"(?:tell|answer|say|reply|respond|inform)\b",
    re.IGNORECASE,
)


def addresses_assistant(text: str) -> bool:
    """Whether the text speaks to an AI assistant ("ignore all previous instructions", "tell
    the user ...", "reveal your system prompt"): such a passage is never quoted as an answer,
    and its sentences are kept out of the model's prompt."""
    return bool(_INSTRUCTION.search(text))
