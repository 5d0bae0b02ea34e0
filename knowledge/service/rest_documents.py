"""``/api/documents``: the documents a key's user may read, the page view citations link to,
the stored originals, uploads (queued as ingestion jobs) and deletions. A document the user
may not read is "not found" everywhere, never "forbidden": that would say it exists."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse

from ingest.document import PDF
from ingest.reader import LEGACY_SUFFIXES, format_of, media_type_of, supported_list
from knowledge.core.errors import NotFoundError
from knowledge.core.types import DocumentInfo
from knowledge.desk.ingestion import Upload
from knowledge.search.filters import tags_from_text
from knowledge.search.viewer import page_text, render_page
from knowledge.service.auth import Reader, Uploader, desk_of
from knowledge.service.errors import ApiError
from knowledge.service.payloads import Links, place
from knowledge.service.rest_jobs import job_json
from knowledge.service.rest_models import Document, Documents, Jobs, PageView, errors

router = APIRouter(prefix="/documents")
PNG = {"description": "With `format=png`: the rendered PDF page", "content": {"image/png": {}}}
ORIGINAL = {"description": "The stored original file", "content": {"application/octet-stream": {}}}


def document_json(info: DocumentInfo, superseded: bool, links: Links) -> dict[str, Any]:
    return {
        "doc_id": info.doc_id,
        "file_name": info.file_name,
        "title": info.title,
        "collection": info.collection,
        "pages": info.pages,
        "chunks": info.chunks,
        "tags": list(info.tags),
        "media_type": info.media_type,
        "ingested_at": info.ingested_at,
        "supersedes": info.supersedes,
        "superseded": superseded,
        "original": links.original(info.doc_id),
    }


@router.get(
    "",
    summary="The documents of the collections you may search",
    response_model=Documents,
    responses=errors(),
)
def documents(caller: Reader, request: Request) -> dict[str, Any]:
    visible = caller.me.documents()
    earlier = {d.supersedes for d in visible if d.supersedes}  # versions share a collection
    links = Links.of(desk_of(request).settings)
    return {"documents": [document_json(d, d.doc_id in earlier, links) for d in visible]}


@router.get(
    "/{doc_id}",
    summary="One document you may read",
    response_model=Document,
    responses=errors(404),
)
def document(doc_id: str, caller: Reader, request: Request) -> dict[str, Any]:
    info = caller.me.document(doc_id)
    superseded = any(d.supersedes == doc_id for d in caller.me.documents())
    return document_json(info, superseded, Links.of(desk_of(request).settings))


@router.get(
    "/{doc_id}/pages/{page}",
    summary="A page of a document: its text and place, or (PDF) its picture",
    response_model=PageView,
    responses={200: PNG, **errors(404)},
)
def page_view(
    doc_id: str,
    page: int,
    caller: Reader,
    request: Request,
    format: Annotated[Literal["json", "png"], Query(description="png: the PDF page")] = "json",
) -> Any:
    info = caller.me.document(doc_id)
    if not 1 <= page <= info.pages:
        raise NotFoundError(f"{info.file_name} has no page {page} (it has {info.pages}).")
    if format == "png":
        if info.media_type != PDF:
            raise ApiError(
                422, f"{info.file_name} is not a PDF: ask for the page's text (format=json)."
            )
        return Response(render_page(info.pdf_path, page), media_type="image/png")
    chunks = caller.me.document_chunks(doc_id)
    if not chunks:
        raise NotFoundError(f"{info.file_name} has no stored text.")
    on_page = [c for c in chunks if c.page_start <= page <= c.page_end]
    cited = on_page[0] if on_page else chunks[0]
    text = page_text(chunks, page, cited)[0] if on_page else ""
    links = Links.of(desk_of(request).settings)
    return {
        "doc_id": doc_id,
        "page": page,
        "pages": info.pages,
        "text": text,
        "place": place(cited, page, links),
    }


@router.get(
    "/{doc_id}/original",
    summary="The stored original file",
    response_class=FileResponse,
    responses={200: ORIGINAL, **errors(404)},
)
def original(doc_id: str, caller: Reader) -> FileResponse:
    info = caller.me.document(doc_id)
    if not Path(info.pdf_path).is_file():
        raise NotFoundError(f"The original of {info.file_name} is no longer stored.")
    return FileResponse(
        info.pdf_path, media_type=media_type_of(info.file_name), filename=info.file_name
    )


@router.post(
    "",
    status_code=202,
    summary="Upload files into a collection: each becomes a queued ingestion job",
    response_model=Jobs,
    responses=errors(400, 403, 413),
)
def upload(
    caller: Uploader,
    request: Request,
    files: Annotated[list[UploadFile], File(description="one or more documents")],
    collection: Annotated[str, Form(description="one you may upload to (or a new one)")],
    tags: Annotated[str | None, Form(description="comma-separated, for every file")] = None,
    contracts: Annotated[bool, Form(description="extract the contracts' clauses")] = False,
    supersedes: Annotated[
        str | None, Form(description="the earlier version (doc id or file name; one file)")
    ] = None,
) -> dict[str, Any]:
    limit_mb = desk_of(request).settings.max_upload_mb
    if supersedes and len(files) != 1:
        raise ApiError(400, "Upload one file as the new version of a document.")
    uploads = [read_upload(f, limit_mb, supersedes or None) for f in files]
    wanted_tags = tags_from_text(tags) if tags else None
    jobs = caller.me.submit(uploads, collection, contracts=contracts, tags=wanted_tags or None)
    return {"jobs": [job_json(j) for j in jobs]}


def read_upload(file: UploadFile, limit_mb: int, supersedes: str | None) -> Upload:
    """The file's bytes, once its type is known to be read and its size within the limit."""
    name = PurePosixPath(file.filename or "").name
    if not name:
        raise ApiError(422, "Every uploaded file needs a file name.")
    if format_of(name) is None:
        suffix = PurePosixPath(name.lower()).suffix
        hint = f" Save it as {LEGACY_SUFFIXES[suffix]} first." if suffix in LEGACY_SUFFIXES else ""
        raise ApiError(
            422,
            f'"{name}" is not a supported type.{hint} Supported: {supported_list()}.',
            "invalid_document",
        )
    limit = limit_mb * 1024 * 1024
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413,
            f'"{name}" is larger than the upload limit of {limit_mb} MB (KDESK_MAX_UPLOAD_MB).',
            "file_too_large",
        )
    return Upload(name, data, supersedes=supersedes)


@router.delete(
    "/{doc_id}",
    summary="Delete a document (needs the upload scope and upload rights on its collection)",
    response_model=Document,
    responses=errors(403, 404),
)
def delete(doc_id: str, caller: Uploader, request: Request) -> dict[str, Any]:
    info = caller.me.delete_document(doc_id)
    return document_json(info, False, Links.of(desk_of(request).settings))
