"""Targeted extractors for the short spans a sentence classifier cannot cut out well: the
parties (names and their defined aliases from the preamble) and the agreement / effective
dates. Each returns exact ``(start, end)`` slices of the document text."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from ingest.clauses.segments import Segment, word_tokens

PREAMBLE_SEGMENTS = 40  # the preamble is among the first segments of a contract
MAX_PARTY_TOKENS = 30

_MONTHS = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_YEAR = r"(?:19|20)[0-9_]{2}|20__|[12]\d{3}"
_DATE = re.compile(
    rf"(?:{_MONTHS}\s+(?:\d{{1,2}}|_+)(?:st|nd|rd|th)?\s*,?\s*(?:{_YEAR})"  # June 21, 1999
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?{_MONTHS},?\s+(?:{_YEAR})"  # 21st June, 1999
    rf"|(?:this|the)?\s*[_\d\s]*(?:st|nd|rd|th)?\s*day\s+of\s+(?:{_MONTHS}|_+)?\s*,?\s*(?:{_YEAR})"
    rf"|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}"  # 9/21/98
    rf"|{_MONTHS}\s*,?\s*(?:{_YEAR}))",  # June 1999
    re.IGNORECASE,
)
_BETWEEN = re.compile(
    r"\b(?:by\s+and\s+between|by\s+and\s+among|between|among|parties\s+to\s+this\s+\w+\s+are"
    r"|(?:entered\s+into|made)\s+by(?!\s+and))\b\s*:?",
    re.IGNORECASE,
)
_ALIAS = re.compile(r"\(([^()]{0,120}?[\"“”][^()]{1,80}[\"“”][^()]{0,60}?)\)")
_PARTY_BREAK = re.compile(
    r"\)\s*[,;]?\s*(?:and|AND|And)?\s*:?\s+|;\s+(?:and\s+)?|,?\s+(?:and|AND)\s*:?\s+"
)
_NOT_A_PARTY_START = frozenset(
    {"whereas", "recitals", "as", "dated", "effective", "subject", "on", "of"}
)
_NOT_A_PARTY_ALIAS = (
    ["effective", "date"],
    ["date"],
    ["agreement"],
    ["term"],
    ["shares"],
    ["fund"],
)


def find_dates(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    for match in _DATE.finditer(text, start, len(text) if end is None else end):
        left, right = match.span()
        while left < right and text[left].isspace():
            left += 1
        if word_tokens(text[left:right]):
            yield left, right


def preamble(segments: Sequence[Segment]) -> Segment | None:
    """The sentence naming the parties ("... by and between A, a Delaware corporation ...")."""
    for segment in segments[:PREAMBLE_SEGMENTS]:
        if _BETWEEN.search(segment.text) and (
            _ALIAS.search(segment.text)
            or re.search(r"\b(?:Inc|LLC|Ltd|Corp|Limited|L\.?P)\b", segment.text)
        ):
            return segment
    return None


def party_spans(text: str, segments: Sequence[Segment]) -> list[tuple[int, int]]:
    """Each party of the preamble: its name up to and including its defined alias."""
    found = preamble(segments)
    if found is None:
        return []
    keyword = _BETWEEN.search(text, found.start, found.end)
    if keyword is None:
        return []
    spans: list[tuple[int, int]] = []
    cursor = keyword.end()
    while cursor < found.end:
        piece_end, next_start = _next_party_end(text, cursor, found.end)
        spans.extend(_trimmed_party(text, cursor, piece_end))
        cursor = next_start
    return spans


def _next_party_end(text: str, start: int, end: int) -> tuple[int, int]:
    """Where the party beginning at ``start`` ends (after its alias) and the next one starts."""
    alias = _ALIAS.search(text, start, end)
    if alias:
        after = re.compile(r"\s*[,;.]?\s*(?:and|AND|And)?\s*:?\s*").match(text, alias.end(), end)
        return alias.end(), after.end() if after else alias.end()
    brk = _PARTY_BREAK.search(text, start, end)
    if brk:
        return brk.start(), brk.end()
    return end, end


def _trimmed_party(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and (text[start].isspace() or text[start] in ",;:"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;."):
        end -= 1
    tokens = word_tokens(text[start:end])
    if not tokens or tokens[0] in _NOT_A_PARTY_START:
        return []
    alias = _ALIAS.search(text, start, end)
    if alias and word_tokens(alias.group(1))[-2:] in _NOT_A_PARTY_ALIAS:
        return []
    if len(tokens) <= MAX_PARTY_TOKENS:
        return [(start, end)]
    # too long to count as the name: the name (up to the first comma) and the alias apart
    comma = text.find(",", start, end)
    spans = [(start, comma)] if comma > start else []
    alias = _ALIAS.search(text, start, end)
    if alias:
        spans.append(alias.span())
    return spans


def agreement_date_span(text: str, segments: Sequence[Segment]) -> tuple[int, int] | None:
    """The first date of the preamble, else the first date among the first segments."""
    found = preamble(segments)
    if found is not None:
        for span in find_dates(text, found.start, found.end):
            return span
    for segment in segments[:PREAMBLE_SEGMENTS]:
        for span in find_dates(text, segment.start, segment.end):
            return span
    return None


def effective_date_spans(text: str, segments: Sequence[Segment]) -> list[tuple[int, int]]:
    """A date said to be the effective date; the agreement date when the preamble says
    the agreement is effective as of it (or defines no other effective date)."""
    for segment in segments:
        if re.search(r"effective\s+date", segment.text, re.IGNORECASE):
            dates = list(find_dates(text, segment.start, segment.end))
            if dates and segment is not preamble(segments):
                return [dates[0]]
    agreement = agreement_date_span(text, segments)
    return [agreement] if agreement else []


_CONTRACT_TITLE = re.compile(
    r"\b(?:agreement|contract|addendum|amendment|license|lease)\b", re.IGNORECASE
)
_CONTRACT_LANGUAGE = re.compile(
    r"\b(?:witnesseth|whereas|in witness whereof|hereby agree|the parties agree|"
    r"agree as follows|by and between|entered into)\b",
    re.IGNORECASE,
)


def looks_like_contract(page_texts: Sequence[str]) -> bool:
    """Whether the first pages read like a contract: a title naming an agreement, contract
    language, and a preamble naming the parties. Conservative: policies and reports say
    "agreement" too, but rarely all three."""
    head = "\n".join(page_texts[:3])
    if not _CONTRACT_TITLE.search(head[:3000]) or len(_CONTRACT_LANGUAGE.findall(head)) < 2:
        return False
    from ingest.clauses.segments import segment_text

    return preamble(segment_text(head)) is not None
