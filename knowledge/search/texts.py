"""What the search indexes index: a chunk's embedded text and keyword text, and a document's
profile (what questions that name their document match)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from knowledge.core.types import Chunk
from knowledge.search.ranking import name_words

# A document's profile, for questions that name their document: its title, file name and the
# opening of its text (a cover page names the parties of a contract, the issuer of a filing).
PROFILE_CHARS = 2000


PROFILE_NAMES = 30


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What is embedded for a chunk: its document title and headings give it context."""
    header = " > ".join([title, *heading_path]) if title else " > ".join(heading_path)
    return f"{header}\n{text}" if header else text


def keyword_text(chunk: Chunk, title_weight: int = 2) -> str:
    """What BM25 indexes: the title (repeated, as questions often name their document), the
    headings and the text."""
    title = " ".join([chunk.title] * title_weight)
    return f"{title} {' '.join(chunk.heading_path)}\n{chunk.text}"


def profile_text(chunks: Sequence[Chunk], title_weight: int = 2) -> str:
    """What a document is known by: the title, the words of its file name, its opening and
    the names it uses most (where a table of contents fills the opening, the parties of a
    contract or the issuer of a filing are still among them)."""
    first = chunks[0]
    file_words = re.sub(r"[_\W]+", " ", first.file_name.rsplit(".", 1)[0])
    opening = ""
    for chunk in chunks:
        if len(opening) >= PROFILE_CHARS:
            break
        opening += " " + chunk.text
    counts = Counter(
        w.lower() for c in chunks for w in name_words(c.text).split() if not w.isdigit()
    )
    names = " ".join(w for w, n in counts.most_common(PROFILE_NAMES) if n > 1)
    title = " ".join([first.title] * title_weight)
    return f"{title} {file_words} {opening[:PROFILE_CHARS]} {names}"
