"""Document tags and the metadata filter of a search: which documents a search may draw from.

A ``SearchFilter`` only ever narrows: the desk resolves it in SQL to document ids inside the
collections the caller may search, and the retriever applies those ids inside every vector
and keyword query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from knowledge.core.errors import KdeskError
from knowledge.core.types import DocumentInfo

MAX_TAG_LENGTH = 40
MAX_TAGS = 20


def normalise_tag(tag: str) -> str:
    """A tag as stored: trimmed, inner spaces collapsed, lower-case."""
    cleaned = " ".join(tag.split()).lower()
    if not cleaned:
        raise KdeskError("A tag cannot be empty.")
    if len(cleaned) > MAX_TAG_LENGTH:
        raise KdeskError(f"Tags are limited to {MAX_TAG_LENGTH} characters: {cleaned[:50]!r}.")
    if "," in cleaned:
        raise KdeskError(f"A tag cannot contain a comma: {cleaned!r}.")
    return cleaned


def normalise_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Normalised, duplicates removed, in the order given."""
    found = tuple(dict.fromkeys(normalise_tag(t) for t in tags))
    if len(found) > MAX_TAGS:
        raise KdeskError(f"A document takes at most {MAX_TAGS} tags.")
    return found


def tags_from_text(text: str) -> tuple[str, ...]:
    """Tags typed as one comma-separated line ("hr, policy,"); blank pieces are ignored."""
    return normalise_tags(piece for piece in text.split(",") if piece.strip())


def parse_day(text: str | date | None, what: str = "date") -> date | None:
    """A UTC day from YYYY-MM-DD (None or "" for no limit)."""
    if text is None or isinstance(text, date):
        return text
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise KdeskError(f"{what}: {text!r} is not a date (YYYY-MM-DD).") from None


@dataclass(frozen=True)
class SearchFilter:
    """Which documents a search may use; every field given must hold (an empty one does not
    filter). ``documents``: file names or document ids, any of them; ``tags``: documents with
    any of these tags; ``ingested_since`` / ``ingested_until``: UTC days, both included.
    Superseded versions are left out unless ``include_earlier`` or named in ``documents``."""

    documents: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    ingested_since: date | None = None
    ingested_until: date | None = None
    include_earlier: bool = False

    def __post_init__(self) -> None:
        names = tuple(dict.fromkeys(d.strip() for d in self.documents if d.strip()))
        object.__setattr__(self, "documents", names)
        object.__setattr__(self, "tags", normalise_tags(self.tags))
        since, until = self.ingested_since, self.ingested_until
        if since and until and since > until:
            raise KdeskError(f"The first day ({since}) comes after the last day ({until}).")

    @classmethod
    def parse(
        cls,
        documents: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        include_earlier: bool = False,
    ) -> SearchFilter:
        """From user input (the CLI's flags): dates as YYYY-MM-DD; a bad one is a KdeskError."""
        return cls(
            tuple(documents or ()),
            tuple(tags or ()),
            parse_day(since, "--since"),
            parse_day(until, "--until"),
            include_earlier,
        )

    @property
    def empty(self) -> bool:
        """Narrows nothing (``include_earlier`` widens, it does not narrow)."""
        return not (self.documents or self.tags or self.ingested_since or self.ingested_until)


def document_tags(
    documents: Iterable[DocumentInfo], collections: Sequence[str] | None = None
) -> list[str]:
    """Every tag the documents (of ``collections``, default all) carry, sorted: the choices
    of a tag filter."""
    return sorted(
        {t for d in documents if collections is None or d.collection in collections for t in d.tags}
    )


def document_choices(
    documents: Iterable[DocumentInfo], collections: Sequence[str]
) -> dict[str, str]:
    """ "collection / file name" -> document id, for the documents of ``collections``; a
    superseded version is marked "(earlier version)"."""
    documents = list(documents)
    earlier = {d.supersedes for d in documents if d.supersedes}
    return {
        f"{d.collection} / {d.file_name}" + (" (earlier version)" if d.doc_id in earlier else ""): (
            d.doc_id
        )
        for d in documents
        if d.collection in collections
    }
