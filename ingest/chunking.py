"""Page texts -> overlapping, heading-aware chunks that remember where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    page_start: int
    page_end: int
    heading_path: tuple[str, ...]
    char_start: int  # offset in the document's text (pages joined by "\n\n")
    char_end: int
    content_hash: str
