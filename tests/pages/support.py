"""What the page tests and the browser test share: a handbook PDF with one topic per page, a
grounded reply for the fake Ollama, and small helpers.

Each handbook page starts with a heading, so the chunker starts a chunk there (no overlap
from the previous page) and a citation of a fact names the page the fact is printed on.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.pdfs import make_pdf

ROOT = Path(__file__).resolve().parents[2]
MODEL = "kdesk-test:1b"
TITLE = "Northwind Employee Handbook"
FILE_NAME = "handbook.pdf"

HANDBOOK = [
    "Welcome to Northwind\n"
    "Welcome to Northwind Traders. This handbook explains how we work together. "
    "The office opens at eight in the morning and closes at six in the evening. "
    "Visitors sign in at the front desk and wear a badge at all times. "
    "Parking spaces in the north garage are assigned by the facilities team. "
    "Bicycles can be stored in the basement room next to the showers. "
    "The kitchen on the second floor has free coffee, tea and fruit. "
    "Meeting rooms are booked through the calendar system up to four weeks ahead.",
    "Vacation Policy\n"
    "Every full-time employee receives 27 days of paid vacation per calendar year. "
    "Vacation requests are approved by your team lead at least two weeks in advance. "
    "Unused vacation days can be carried over until the end of March of the following year. "
    "Part-time employees receive vacation in proportion to their contracted hours. "
    "Public holidays are not counted as vacation days.",
    "Travel Expenses\n"
    "Train tickets in second class are reimbursed for trips under four hours. "
    "Hotel costs are reimbursed up to 140 euros per night in major cities. "
    "Submit receipts through the expense portal within thirty days of the trip. "
    "Meals on business trips are covered by a daily allowance of 28 euros.",
]

VACATION_QUESTION = "How many days of paid vacation does a full-time employee receive?"
VACATION_FACT = "27 days of paid vacation"
VACATION_PAGE = 2
APPROVAL_FOLLOW_UP = "Who approves them?"
APPROVAL_FACT = "approved by your team lead"
HOTEL_QUESTION = "How much are hotel costs reimbursed per night?"
HOTEL_FACT = "140 euros per night"
HOTEL_PAGE = 3
OFF_TOPIC_QUESTION = "What is the boiling point of mercury on Jupiter?"


def handbook_pdf() -> bytes:
    return make_pdf(HANDBOOK, title=TITLE)


_SOURCE = re.compile(r"^\[(\d+)\] ", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "in"}
    | {"is", "it", "of", "on", "or", "per", "the", "to", "what", "who", "why", "with"}
)


def _words(text: str) -> set[str]:
    """Content words, crudely stemmed ("approves" and "approved" both give "appro")."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}


def sources_and_question(messages: Sequence[Mapping[str, Any]]) -> tuple[dict[int, str], str]:
    """The numbered sources and the question of the prompt Knowledge Desk sends."""
    prompt = str(messages[-1]["content"])
    sources_part, _, question_part = prompt.partition("\n\nQuestion: ")
    question = question_part.removesuffix("\nAnswer:").strip()
    body = sources_part.removeprefix("Sources:\n")
    marks = list(_SOURCE.finditer(body))
    sources = {
        int(m.group(1)): body[m.end() : marks[i + 1].start() if i + 1 < len(marks) else None]
        for i, m in enumerate(marks)
    }
    return sources, question


def grounded_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """Quote the source sentence that best matches the question (and the previous question,
    for a follow-up), cited as [n] - what a well-behaved model does."""
    sources, question = sources_and_question(messages)
    wanted = _words(question)
    previous = [m for m in messages[:-1] if m.get("role") == "user"]
    context = _words(str(previous[-1]["content"])) if previous else set()
    best: tuple[float, int, str] | None = None
    for n, text in sources.items():
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            words = _words(sentence)
            score = len(words & wanted) + 0.1 * len(words & context)
            if best is None or score > best[0]:
                best = (score, n, sentence)
    if best is None or best[0] == 0:
        return "The knowledge base does not cover this."
    _, n, sentence = best
    return f"{sentence.rstrip('.')} [{n}]."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
