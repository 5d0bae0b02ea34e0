"""Structure the format itself marks (Word heading styles, HTML h1-h6, Markdown #, slide titles,
table cells), found exactly on a page's lines, so the chunker need not guess it."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.lines import _Line

# How readers of formats with tables (DOCX, PPTX, HTML, sheets) separate a row's cells.
CELL_SEPARATOR = " | "

Headings = tuple[tuple[int, str], ...]  # (level, text) of a page's heading lines, in order


def marked_headings(lines: Sequence[_Line], headings: Headings) -> dict[int, int]:
    """Index of each heading line -> its level: the lines equal to the headings, in order."""
    found: dict[int, int] = {}
    pending = list(headings)
    for index, line in enumerate(lines):
        if pending and line.text == pending[0][1]:
            found[index] = pending.pop(0)[0]
    return found


def cell_table_runs(lines: Sequence[_Line]) -> dict[int, int]:
    """Index of each table block's first line -> the index after its last: consecutive lines
    of cells (a blank line ends a block; each block begins with its table's header row)."""
    runs: dict[int, int] = {}
    i = 0
    while i < len(lines):
        if CELL_SEPARATOR not in lines[i].text:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and CELL_SEPARATOR in lines[end].text:
            if lines[end].blank_before:
                break
            end += 1
        runs[i] = end
        i = end
    return runs
