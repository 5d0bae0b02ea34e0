"""The tools every desk has: summarise a document, list documents, look up clause records.

They read only through the ``ToolContext`` they are given (the signed-in user's view), so a
document or clause of a collection the user may not search is as absent for a tool as for
the user."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from knowledge.assistant.chat import ChatModel
from knowledge.assistant.citations import (
    VerifiedText,
    keyword_scorer,
    quotable,
    verify_citations,
)
from knowledge.contracts.book import STATUSES, ClauseFilter
from knowledge.core.text import content_words, split_sentences
from knowledge.core.types import Chunk, DocumentInfo
from knowledge.tools.base import FunctionTool, Tool, ToolContext, ToolError, ToolResult, ToolSpec

GROUP = 6  # chunks summarised together in the map step
MAX_GROUPS = 20  # longer documents get larger groups, so a summary costs at most ~40 calls
GROUP_CHARS = 3600  # of passage text in one map prompt
KEY_SENTENCES = 6  # of the extractive summary
LIST_LIMIT = 50

MAP_PROMPT = (
    "Summarise the numbered passages of one document in two or three sentences. End every "
    "sentence with the [n] of the passage it comes from. Use only what the passages say."
)
REDUCE_PROMPT = (
    "Combine these partial summaries of one document into one summary of at most six "
    "sentences. Keep the [n] citations exactly as they are. Add nothing new."
)
_MARK = re.compile(r"\[(\d+)\]")

ModelGetter = Callable[[], ChatModel | None]


def builtin_tools(model: ModelGetter) -> list[Tool]:
    """``model`` gives the chat model summaries are written with (None or the embedded
    model: the extractive summary)."""
    return [summarise_tool(model), list_documents_tool(), clause_records_tool()]


def _text(arguments: Mapping[str, Any], name: str) -> str:
    value = arguments.get(name)
    return value.strip() if isinstance(value, str) else ""


def find_document(context: ToolContext, ref: str) -> DocumentInfo:
    """One of the user's documents by id, file name or title (exact, else a unique part)."""
    if not ref:
        raise ToolError("Name the document: its id, file name or title.")
    documents = context.documents()
    key = ref.lower()
    for candidates in (
        [d for d in documents if d.doc_id == ref],
        [d for d in documents if key in (d.file_name.lower(), d.title.lower())],
        [d for d in documents if key in d.file_name.lower() or key in d.title.lower()],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            names = ", ".join(f"{d.file_name} ({d.doc_id})" for d in candidates[:5])
            raise ToolError(f"{ref!r} matches several documents: {names}. Give its id.")
    raise ToolError(f"No document {ref!r} among those you may read.")


# summarise_document ------------------------------------------------------------------------------


def summarise_tool(model: ModelGetter) -> Tool:
    spec = ToolSpec(
        "summarise_document",
        "Summarise a whole document, citing its passages as [n].",
        {
            "type": "object",
            "properties": {
                "document": {"type": "string", "description": "its id, file name or title"},
                "focus": {"type": "string", "description": "what the summary should stress"},
            },
            "required": ["document"],
        },
    )

    def run(context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        info = find_document(context, _text(arguments, "document"))
        chunks = context.document_chunks(info.doc_id)
        if not chunks:
            raise ToolError(f"{info.file_name} has no stored text to summarise.")
        summary, method = summarise(chunks, _text(arguments, "focus"), _model_or_none(model))
        cited = [chunks[n - 1] for n in summary.cited]
        heading = f"Summary of {info.title or info.file_name} ({info.file_name}):"
        data = {"doc_id": info.doc_id, "method": method, "passages": len(chunks)}
        return ToolResult(f"{heading}\n{renumbered(summary)}", tuple(cited), data)

    return FunctionTool(spec, run)


def _model_or_none(model: ModelGetter) -> ChatModel | None:
    try:
        return model()
    except Exception:  # noqa: BLE001 - no model to be had: the extractive summary
        return None


def summarise(
    chunks: Sequence[Chunk], focus: str, model: ChatModel | None
) -> tuple[VerifiedText, str]:
    """Map-reduce through the model, every citation checked against the chunks; the key
    sentences, cited, when there is no capable model or its summary is not supported."""
    if model is not None and not model.name.startswith("embedded"):
        try:
            verified = verify_citations(_map_reduce(model, chunks, focus), [c.text for c in chunks])
        except Exception:  # noqa: BLE001 - a failing model still gets the user a summary
            verified = VerifiedText("")
        if verified.supported:
            return verified, "model"
    return key_sentences(chunks, focus), "extractive"


def _groups(count: int) -> list[range]:
    size = max(GROUP, math.ceil(count / MAX_GROUPS))
    return [range(i, min(i + size, count)) for i in range(0, count, size)]


def _map_reduce(model: ChatModel, chunks: Sequence[Chunk], focus: str) -> str:
    stress = f"\nStress: {focus}" if focus else ""
    partials = []
    for group in _groups(len(chunks)):
        room = GROUP_CHARS // len(group)
        passages = "\n\n".join(f"[{i + 1}] {chunks[i].text[:room]}" for i in group)
        partials.append(_complete(model, MAP_PROMPT + stress, passages))
    while len(partials) > 1:  # reduce in groups until one summary is left
        partials = [
            _complete(model, REDUCE_PROMPT + stress, "\n\n".join(partials[i : i + GROUP]))
            for i in range(0, len(partials), GROUP)
        ]
    return partials[0]


def _complete(model: ChatModel, instruction: str, text: str) -> str:
    messages = [{"role": "system", "content": instruction}, {"role": "user", "content": text}]
    return "".join(model.stream(messages, temperature=0.0, max_tokens=300))  # type: ignore[arg-type]


def key_sentences(
    chunks: Sequence[Chunk], focus: str = "", limit: int = KEY_SENTENCES
) -> VerifiedText:
    """The extractive summary: per group of chunks its sentence most about the document's
    most used words (or ``focus``), the best ``limit`` of them in the document's order."""
    used = Counter(word for chunk in chunks for word in content_words(chunk.text))
    query = focus or " ".join(word for word, _ in used.most_common(25))
    best: list[tuple[float, int, str]] = []  # (score, chunk number, sentence)
    for group in _groups(len(chunks)):
        candidates = [
            (i + 1, quoted)
            for i in group
            for sentence in split_sentences(chunks[i].text)
            if (quoted := quotable(sentence))
        ]
        if candidates:
            scores = keyword_scorer(query, [q for _, q in candidates])
            top = max(range(len(candidates)), key=lambda j: (scores[j], -j))
            best.append((scores[top], *candidates[top]))
    picked = sorted(sorted(best, key=lambda b: -b[0])[:limit], key=lambda b: b[1])
    text = " ".join(f"{sentence.rstrip()} [{n}]" for _, n, sentence in picked)
    cited = list(dict.fromkeys(n for _, n, _ in picked))
    return VerifiedText(text, cited, bool(cited))


def renumbered(summary: VerifiedText) -> str:
    """The summary's [n] (chunk numbers) as positions among its citations, like answers."""
    position = {n: k for k, n in enumerate(summary.cited, start=1)}
    return _MARK.sub(lambda m: f"[{position.get(int(m.group(1)), '?')}]", summary.text)


# list_documents ----------------------------------------------------------------------------------


def list_documents_tool() -> Tool:
    spec = ToolSpec(
        "list_documents",
        "List the documents you may read, filtered by collection, tag or words of the title.",
        {
            "type": "object",
            "properties": {
                "collection": {"type": "string"},
                "tag": {"type": "string"},
                "title": {"type": "string", "description": "words the title or file name has"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
        },
    )

    def run(context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        found = matching_documents(
            context.documents(),
            _text(arguments, "collection"),
            _text(arguments, "tag"),
            _text(arguments, "title"),
        )
        shown = found[: int(arguments.get("limit") or LIST_LIMIT)]
        if not shown:
            return ToolResult("No documents match.", data=[])
        lines = [
            f"- {d.title or d.file_name} ({d.file_name}) · {d.collection}"
            + (f" · {', '.join(d.tags)}" if d.tags else "")
            + f" · id {d.doc_id}"
            for d in shown
        ]
        more = f"\n({len(found) - len(shown)} more)" if len(found) > len(shown) else ""
        rows = [_document_row(d) for d in shown]
        return ToolResult(f"{len(found)} document(s):\n" + "\n".join(lines) + more, data=rows)

    return FunctionTool(spec, run)


def matching_documents(
    documents: Sequence[DocumentInfo], collection: str, tag: str, title: str
) -> list[DocumentInfo]:
    words = title.lower().split()

    def keep(d: DocumentInfo) -> bool:
        named = f"{d.title} {d.file_name}".lower()
        return (
            (not collection or d.collection.lower() == collection.lower())
            and (not tag or tag.lower() in (t.lower() for t in d.tags))
            and all(word in named for word in words)
        )

    return sorted((d for d in documents if keep(d)), key=lambda d: (d.collection, d.file_name))


def _document_row(d: DocumentInfo) -> dict[str, object]:
    return {
        "doc_id": d.doc_id,
        "collection": d.collection,
        "file_name": d.file_name,
        "title": d.title,
        "pages": d.pages,
        "tags": list(d.tags),
    }


# clause_records ----------------------------------------------------------------------------------


def clause_records_tool() -> Tool:
    spec = ToolSpec(
        "clause_records",
        "Look up contract clause records by category, document and review status.",
        {
            "type": "object",
            "properties": {
                "category": {"type": "string", "description": 'e.g. "Governing Law"'},
                "document": {"type": "string", "description": "its id, file name or title"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "limit": {"type": "integer", "minimum": 1, "maximum": 500},
            },
        },
    )

    def run(context: ToolContext, arguments: Mapping[str, Any]) -> ToolResult:
        document = _text(arguments, "document")
        category = _text(arguments, "category").lower()
        status = _text(arguments, "status")
        where = ClauseFilter(
            doc_ids=[find_document(context, document).doc_id] if document else None,
            statuses=[status] if status else None,
        )
        records = context.clause_records(where)
        found = [r for r in records if not category or r.category.lower() == category]
        shown = found[: int(arguments.get("limit") or LIST_LIMIT)]
        if not shown:
            return ToolResult("No clause records match.", data=[])
        lines = [
            f"- {r.category}: {r.value or '-'} · {r.file_name} p. {r.page} · {r.status} · id {r.id}"
            for r in shown
        ]
        rows = [
            {
                "id": r.id,
                "doc_id": r.doc_id,
                "file_name": r.file_name,
                "category": r.category,
                "value": r.value,
                "page": r.page,
                "status": r.status,
            }
            for r in shown
        ]
        return ToolResult(f"{len(found)} clause record(s):\n" + "\n".join(lines), data=rows)

    return FunctionTool(spec, run)
