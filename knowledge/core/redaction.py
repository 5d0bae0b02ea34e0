"""What of a question is kept for usage analytics: all of it, a redacted copy, or nothing.

Redaction masks what identifies people or records - e-mail addresses, phone numbers, IBANs,
dates, IDs that mix letters and digits, long digit runs and names after a title or "my name
is" - and keeps the words that say what the question is about. Names elsewhere in a sentence
are not detected (that needs a language model); use ``off`` where that matters.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

QuestionStorage = Literal["full", "redacted", "off"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\bhttps?://\S+", re.IGNORECASE)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z\d]{4}){2,7}(?: ?[A-Z\d]{1,4})?\b")
_DATE = re.compile(r"\b(?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}-\d{1,2}-\d{1,2})\b")
_PHONE = re.compile(r"(?<![\w+])\+?\d[\d ()./-]{5,}\d(?!\w)")
_ID = re.compile(r"\b(?=[A-Za-z-]*\d)(?=[\d-]*[A-Za-z])[A-Za-z\d]+(?:-[A-Za-z\d]+)*\b")
_LONG_NUMBER = re.compile(r"\d{5,}")
_NAMED = re.compile(
    r"\b(?P<lead>(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?|(?i:my name is|i am|i'm|colleague|employee))"
    r"\s+(?P<name>[A-Z][\w'-]+(?:\s+[A-Z][\w'-]+)*)"
)
_SPACES = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s?!.,;:]+$")


def _mask_phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "[phone]" if digits >= 7 else match.group()


def _mask_id(match: re.Match[str]) -> str:
    token = match.group()
    return "[id]" if len(token) >= 5 and sum(c.isdigit() for c in token) >= 3 else token


def redact(text: str) -> str:
    """``text`` with personal data and record identifiers replaced by [email], [phone], ..."""
    text = _EMAIL.sub("[email]", text)
    text = _URL.sub("[url]", text)
    text = _IBAN.sub("[iban]", text)
    text = _DATE.sub("[date]", text)
    text = _PHONE.sub(_mask_phone, text)
    text = _ID.sub(_mask_id, text)
    text = _LONG_NUMBER.sub("[number]", text)
    return _NAMED.sub(lambda m: f"{m.group('lead')} [name]", text)


def normalized(question: str) -> str:
    """The form in which two askings of the same question are equal."""
    return _TRAILING.sub("", _SPACES.sub(" ", question).strip().lower())


def question_hash(text: str) -> str:
    """A short stable fingerprint of the stored text (so grouping never needs more than that)."""
    return hashlib.sha256(normalized(text).encode("utf-8")).hexdigest()[:16]


def stored_question(question: str, storage: QuestionStorage) -> tuple[str | None, str | None]:
    """(text to store, its hash) for the storage mode; ``off`` keeps neither."""
    if storage == "off":
        return None, None
    text = redact(question) if storage == "redacted" else question
    text = _SPACES.sub(" ", text).strip()
    return text, question_hash(text)
