"""Small text utilities shared by retrieval and answering: sentences, content words, overlap."""

from __future__ import annotations

import re
from collections.abc import Iterable

# an end mark after a word or a number of 2+ digits ("in 2024."), not after "1." of a heading
_SENTENCE_END = re.compile(r"(?:(?<=[^\s\d][.!?;])|(?<=\d\d[.!?;]))\s+(?=[\"'(\[]?[A-Z0-9])")
_LIST_ITEM = re.compile(r"^\s*([-•*]|\d+[.)]|\(?[a-z]\))\s")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")

STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours shall may must also per any within
    upon
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def _is_heading_line(line: str) -> bool:
    stripped = line.strip()
    return 0 < len(stripped) <= 60 and stripped[-1] not in ".!?:;,"


def _block_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, with heading-like short lines and list items as blocks
    of their own."""
    blocks: list[tuple[int, int]] = []
    start: int | None = None  # where the current block begins
    end = 0
    lines_in_block = 0
    offset = 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line_start, offset = offset, offset + len(line) + 1
        following = lines[i + 1].lstrip() if i + 1 < len(lines) else ""
        if not line.strip():
            if start is not None:
                blocks.append((start, end))
            start, lines_in_block = None, 0
            continue
        if _LIST_ITEM.match(line) and start is not None:
            blocks.append((start, end))
            start = None
        if start is None:
            start, lines_in_block = line_start, 0
        lines_in_block += 1
        end = line_start + len(line)
        if _is_heading_line(line) and following[:1].isupper() and lines_in_block == 1:
            blocks.append((start, end))
            start, lines_in_block = None, 0
    if start is not None:
        blocks.append((start, end))
    return blocks


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text``: the one sentence splitter of the
    project (headings and list items end a sentence too)."""
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _block_spans(text):
        flat = text[block_start:block_end].replace("\n", " ")
        pieces, position = [], 0
        for match in _SENTENCE_END.finditer(flat):
            pieces.append((position, match.start()))
            position = match.end()
        pieces.append((position, len(flat)))
        for a, b in pieces:
            piece = flat[a:b]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            if b - a - lead - trail > 0:
                spans.append((block_start + a + lead, block_start + b - trail))
    return spans


def split_sentences(text: str) -> list[str]:
    return [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]


def light_stem(word: str) -> str:
    for suffix in ("ies", "ied"):
        if word.endswith(suffix) and len(word) > 5:
            return word[: -len(suffix)] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {
        light_stem(w)
        for w in (m.group(0).lower().strip("'’-") for m in _WORD.finditer(text))
        if w and w not in STOPWORDS and (len(w) > 2 or w.isdigit())
    }


def overlap(claim: Iterable[str] | str, source: set[str]) -> float:
    """Share of the claim's content words that the source contains (0..1)."""
    words = content_words(claim) if isinstance(claim, str) else set(claim)
    if not words:
        return 0.0
    return len(words & source) / len(words)
