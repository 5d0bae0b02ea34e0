"""Normalised values of clause texts: ISO dates, durations in months, jurisdictions, amounts.

Each function returns ``None`` when the text does not state the value plainly (a blank date
"this ___ day of ____, 2012", a term "until terminated"): a missing value beats an invented one.
"""

from __future__ import annotations

import re
from datetime import date

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sept", "sep"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_MONTH_FIRST = re.compile(
    rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*((?:19|20)\d\d)\b", re.IGNORECASE
)
_DAY_FIRST = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?({_MONTH})\.?\s*,?\s*((?:19|20)\d\d)\b",
    re.IGNORECASE,
)
_NUMERIC = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})\b")

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "eighteen": 18, "twenty": 20, "twenty-four": 24,
    "thirty": 30, "thirty-six": 36, "forty-five": 45, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy-five": 75, "ninety": 90, "one hundred twenty": 120, "one hundred eighty": 180,
    "one hundred and eighty": 180, "a": 1, "an": 1,
}  # fmt: skip
_NUMBER = "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True))
_DURATION = re.compile(
    rf"\b(\d+|{_NUMBER})\s*(?:\((\d+)\)\s*)?(?:consecutive\s+|calendar\s+|business\s+|full\s+)?"
    r"(day|week|month|year)s?\b",
    re.IGNORECASE,
)
_UNIT_MONTHS = {"day": 1 / 30, "week": 7 / 30, "month": 1.0, "year": 12.0}
_LAW = re.compile(
    r"laws?\s+(?:of|in)\s+(?:the\s+)?(?:(?:State|Commonwealth|Province|Republic|Kingdom)\s+of\s+)?"
    r"([A-Z][A-Za-z.]*(?:[ \-](?:of\s+)?[A-Z][A-Za-z.]*){0,4})",
)
_LAW_ADJECTIVE = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+law\b")
_NOT_JURISDICTION = {"United States", "the United States", "Agreement", "This Agreement"}
_MONEY = re.compile(
    r"(?:US\s?)?[$€£]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|thousand))?"
    r"|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars|USD|EUR|euros)\b",
    re.IGNORECASE,
)


def iso_date(text: str) -> str | None:
    """The first complete date in the text, as YYYY-MM-DD."""
    found = _dates(text)
    return found[0][1].isoformat() if found else None


_END_CUE = re.compile(r"\b(?:through|until|expir\w*|terminat\w*|end(?:s|ing)?)\b", re.IGNORECASE)


def end_date(text: str) -> str | None:
    """The date a term ends: the first date after "through", "until", "expire"...; else the
    last date of the text ("commence on January 1, 2010 and extend through December 31, 2012")."""
    found = _dates(text)
    if not found:
        return None
    cue = _END_CUE.search(text)
    after = [d for position, d in found if cue and position > cue.start()]
    return (after[0] if after else found[-1][1]).isoformat()


def _dates(text: str) -> list[tuple[int, date]]:
    """Every complete date of the text with its position, in order."""
    found: list[tuple[int, date]] = []
    for match in _MONTH_FIRST.finditer(text):
        month, day, year = MONTHS[match.group(1).lower()], int(match.group(2)), int(match.group(3))
        found.extend(_dated(match.start(), year, month, day))
    for match in _DAY_FIRST.finditer(text):
        day, month, year = int(match.group(1)), MONTHS[match.group(2).lower()], int(match.group(3))
        found.extend(_dated(match.start(), year, month, day))
    for match in _NUMERIC.finditer(text):
        month, day, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        year = year + (1900 if year >= 50 else 2000) if year < 100 else year
        found.extend(_dated(match.start(), year, month, day))
    return sorted(found)


def _dated(position: int, year: int, month: int, day: int) -> list[tuple[int, date]]:
    try:
        return [(position, date(year, month, day))]
    except ValueError:
        return []


def duration_months(text: str) -> float | None:
    """The first stated duration, in months (30 days to a month)."""
    match = _DURATION.search(text)
    if not match:
        return None
    spelled, digits, unit = match.group(1).lower(), match.group(2), match.group(3).lower()
    count = int(digits) if digits else int(spelled) if spelled.isdigit() else NUMBER_WORDS[spelled]
    return round(count * _UNIT_MONTHS[unit], 1)


def format_months(months: float) -> str:
    return f"{months:g} month" + ("" if months == 1 else "s")


def jurisdiction(text: str) -> str | None:
    """The governing law's jurisdiction: "New York", "Delaware", "England and Wales"."""
    for match in _LAW.finditer(text):
        name = match.group(1).rstrip(".")
        name = re.split(r"\s+(?:without|and\s+the|applicable|as|in|excluding|except)\b", name)[0]
        if name and name not in _NOT_JURISDICTION:
            return _with_partner(text, match.end(), name)
    adjective = _LAW_ADJECTIVE.search(text)
    return adjective.group(1) if adjective else None


def _with_partner(text: str, end: int, name: str) -> str:
    """ "England and Wales": keep a second place joined by "and" right after the first."""
    partner = re.match(r"\s+and\s+(Wales|Scotland)\b", text[end:])
    return f"{name} and {partner.group(1)}" if partner else name


def money(text: str) -> str | None:
    match = _MONEY.search(text)
    return " ".join(match.group(0).split()) if match else None


_PARTY_NAME_END = re.compile(
    r"\s*\(|,?\s+(?=(?:a|an|the|having|with|located|whose|organi[sz]ed|incorporated|acting)\s)"
)


def party_name(text: str) -> str:
    """The party's name: what comes before its description or alias."""
    name = _PARTY_NAME_END.split(text, maxsplit=1)[0]
    return " ".join(name.split()).strip(' "“”') or " ".join(text.split())


DURATION_CATEGORIES = frozenset(
    {"Renewal Term", "Notice Period To Terminate Renewal", "Warranty Duration"}
)
DATE_CATEGORIES = frozenset({"Agreement Date", "Effective Date"})


def normalised_value(category: str, text: str) -> str | None:
    """The value a reviewer filters on, or None where the category has no plain value."""
    if category in DATE_CATEGORIES:
        return iso_date(text)
    if category == "Expiration Date":
        when = end_date(text)
        months = duration_months(text)
        return when or (format_months(months) if months is not None else None)
    if category in DURATION_CATEGORIES:
        months = duration_months(text)
        return format_months(months) if months is not None else None
    if category == "Governing Law":
        return jurisdiction(text)
    if category == "Parties":
        return party_name(text)
    if category == "Cap On Liability":
        return money(text)
    return None
