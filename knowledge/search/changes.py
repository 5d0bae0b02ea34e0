"""What changed between two versions of a document: their stored chunks grouped into sections
by heading path, each section's sentences compared (difflib), and the sections added, removed
or changed listed with a short diff."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from knowledge.core.text import sentence_spans
from knowledge.core.types import Chunk

NO_HEADING = "(before the first heading)"
DIFF_LINES = 8  # of a section's diff shown; the rest is counted
ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class SectionChange:
    section: str  # heading path, "A > B"
    kind: ChangeKind
    removed: tuple[str, ...]  # sentences only in the earlier version
    added: tuple[str, ...]  # sentences only in the later version
    pages: str  # where the section is: in the later version, else the earlier

    def diff(self, limit: int = DIFF_LINES) -> list[str]:
        """The section's change as "- sentence" / "+ sentence" lines, at most ``limit``."""
        lines = [f"- {s}" for s in self.removed] + [f"+ {s}" for s in self.added]
        if len(lines) > limit:
            return [*lines[:limit], f"... {len(lines) - limit} more"]
        return lines


@dataclass
class _Section:
    sentences: list[str]
    first_page: int
    last_page: int


def _sections(chunks: Sequence[Chunk]) -> dict[str, _Section]:
    """Heading path -> its sentences in order (``chunks`` in document order; a sentence
    repeated by the chunks' overlap counted once) and its pages."""
    found: dict[str, _Section] = {}
    for chunk in chunks:
        name = " > ".join(chunk.heading_path) or NO_HEADING
        section = found.setdefault(name, _Section([], chunk.page_start, chunk.page_end))
        section.last_page = max(section.last_page, chunk.page_end)
        for a, b in sentence_spans(chunk.text):
            sentence = " ".join(chunk.text[a:b].split())
            if sentence and sentence not in section.sentences:
                section.sentences.append(sentence)
    return found


def _pages(section: _Section) -> str:
    if section.first_page == section.last_page:
        return f"p. {section.first_page}"
    return f"pp. {section.first_page}-{section.last_page}"


def section_changes(earlier: Sequence[Chunk], later: Sequence[Chunk]) -> list[SectionChange]:
    """The sections that differ, in the later version's order, then those it dropped."""
    old, new = _sections(earlier), _sections(later)
    changes: list[SectionChange] = []
    for name, section in new.items():
        before = old.get(name)
        if before is None:
            added = tuple(section.sentences)
            changes.append(SectionChange(name, "added", (), added, _pages(section)))
            continue
        removed, added = _sentence_diff(before.sentences, section.sentences)
        if removed or added:
            changes.append(SectionChange(name, "changed", removed, added, _pages(section)))
    for name, section in old.items():
        if name not in new:
            changes.append(
                SectionChange(name, "removed", tuple(section.sentences), (), _pages(section))
            )
    return changes


def _sentence_diff(
    before: Sequence[str], after: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    matcher = difflib.SequenceMatcher(a=list(before), b=list(after), autojunk=False)
    removed: list[str] = []
    added: list[str] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op != "equal":
            removed.extend(before[a1:a2])
            added.extend(after[b1:b2])
    return tuple(removed), tuple(added)
