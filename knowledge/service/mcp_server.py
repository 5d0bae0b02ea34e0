"""The desk as an MCP server for other assistants (Claude Desktop, IDEs, agents): tools to
search the company's documents, ask for a grounded answer with citations, list the documents
and read a passage or page. Every call acts as the API key's user (``Caller.me``: their roles,
collections, persona, rate limit, audit and usage events on the channel "api"), so an
assistant sees exactly what that user may read; errors come back as tool errors it can read.

Transports: stdio (``kdesk mcp``, knowledge/cli/mcp.py) and Streamable HTTP at ``/mcp`` in the
API app (knowledge/service/mcp_http.py); they differ only in where the caller comes from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from knowledge.core.errors import KdeskError, NotFoundError
from knowledge.desk.facade import UserDesk
from knowledge.desk.root import Desk
from knowledge.search.viewer import page_text
from knowledge.service import payloads
from knowledge.service.auth import Caller
from knowledge.service.mcp_results import (
    Document,
    DocumentList,
    PageText,
    ask_text,
    documents_text,
    result,
    search_text,
)
from knowledge.service.mcp_results import page_text as page_rendering
from knowledge.service.payloads import AnswerBody, SearchResults

CallerOf = Callable[[Context], Caller]  # who is calling, for each tool call

INSTRUCTIONS = """Knowledge Desk answers from the company's own documents, with citations.
Use search_knowledge to find passages, ask for a grounded answer with [n] citations,
list_documents to see what there is, and get_passage to read a passage or page in full.
You only ever see what the API key's user may read. Cite documents by name and page, and
give the link when the user may want to open the page."""
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
MAX_K = 20

Collections = Annotated[
    list[str] | None,
    Field(description="Only these collections (default: all the user may read)."),
]


@contextmanager
def tool_errors() -> Iterator[None]:
    """The desk's refusals (no access, not found, rate limited, model down) as tool errors
    with the desk's own message; anything else is the SDK's generic tool error (logged)."""
    try:
        yield
    except KdeskError as exc:
        raise ToolError(str(exc)) from exc


class DeskTools:
    """The tools, over one desk; ``caller_of`` says who calls (and must have the read scope)."""

    def __init__(self, desk: Desk, caller_of: CallerOf) -> None:
        self.desk = desk
        self.caller_of = caller_of

    @property
    def links(self) -> payloads.Links:
        return payloads.Links.of(self.desk.settings)

    def reader(self, ctx: Context) -> UserDesk:
        """The user, to read documents (as the REST API's document routes)."""
        with tool_errors():
            caller = self.caller_of(ctx)
            caller.require("read")
        return caller.me

    def asker(self, ctx: Context) -> UserDesk:
        """The user, to search and ask: as in the web app, a role must give the chat page."""
        with tool_errors():
            caller = self.caller_of(ctx)
            caller.require("read")
            return caller.asking()

    def search_knowledge(
        self,
        query: Annotated[str, Field(min_length=1, description="What to look for, in plain words.")],
        ctx: Context,
        collections: Collections = None,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many passages.")] = 5,
    ) -> Annotated[CallToolResult, SearchResults]:
        """Search the company's documents for passages about the query (no model: the
        passages themselves), best first, each with its document, page, location and link.
        Give a passage's chunk_id to get_passage to read its page."""
        me = self.asker(ctx)
        with tool_errors():
            found = me.search(query, collections, k)
        passages = [payloads.passage_json(f, self.links) for f in found]
        shaped = SearchResults.model_validate({"query": query, "passages": passages})
        return result(shaped, search_text(shaped))

    def ask(
        self,
        question: Annotated[str, Field(min_length=1, description="The question, in plain words.")],
        ctx: Context,
        collections: Collections = None,
    ) -> Annotated[CallToolResult, AnswerBody]:
        """Ask the company's documents a question: a grounded answer whose sentences carry
        [n] markers, and the citations they point at (document, page, quoted passage, link).
        abstained is true when the documents do not answer it."""
        me = self.asker(ctx)
        with tool_errors():
            stream = me.ask(question, collections)
            for _ in stream:  # the answer is verified once the text is complete
                pass
        shaped = AnswerBody.model_validate(payloads.answer_json(stream.answer, self.links))
        return result(shaped, ask_text(shaped))

    def list_documents(
        self,
        ctx: Context,
        collection: Annotated[
            str | None, Field(description="Only this collection (default: all).")
        ] = None,
    ) -> Annotated[CallToolResult, DocumentList]:
        """The documents the user may read (title, file name, collection, pages, doc_id)."""
        me = self.reader(ctx)
        with tool_errors():
            infos = me.documents()
        listed = DocumentList(
            documents=[
                Document(
                    doc_id=d.doc_id,
                    document=d.file_name,
                    title=d.title,
                    collection=d.collection,
                    pages=d.pages,
                    tags=list(d.tags),
                    ingested_at=d.ingested_at,
                    link=self.links.page(d.doc_id, 1),
                )
                for d in infos
                if collection is None or d.collection == collection
            ]
        )
        return result(listed, documents_text(listed))

    def get_passage(
        self,
        ctx: Context,
        chunk_id: Annotated[
            str | None, Field(description="A passage's chunk_id from search_knowledge.")
        ] = None,
        doc_id: Annotated[str | None, Field(description="Or a document's doc_id ...")] = None,
        page: Annotated[int | None, Field(ge=1, description="... and one of its pages.")] = None,
    ) -> Annotated[CallToolResult, PageText]:
        """The full text of a passage (by chunk_id) or of a whole page of a document (by
        doc_id and page), with its place and link."""
        me = self.reader(ctx)
        with tool_errors():
            if chunk_id:
                shaped = self.passage(me, chunk_id)
            elif doc_id and page:
                shaped = self.page(me, doc_id, page)
            else:
                raise KdeskError("Give a chunk_id, or a doc_id and a page.")
        return result(shaped, page_rendering(shaped))

    def passage(self, me: UserDesk, chunk_id: str) -> PageText:
        chunk = self.desk.store.chunks([chunk_id]).get(chunk_id)
        missing = NotFoundError(f"No passage with id {chunk_id}.")
        if chunk is None:
            raise missing
        try:  # one the user may not read is "not found" like a missing one (and audited)
            me.document(chunk.doc_id)
        except NotFoundError:
            raise missing from None
        return PageText(
            doc_id=chunk.doc_id,
            document=chunk.file_name,
            title=chunk.title,
            collection=chunk.collection,
            page=chunk.page_start,
            location=chunk.cited_as(),
            text=chunk.text,
            chunk_ids=[chunk.id],
            link=self.links.page(chunk.doc_id, chunk.page_start),
        )

    def page(self, me: UserDesk, doc_id: str, page: int) -> PageText:
        chunks = me.document_chunks(doc_id)  # NotFoundError for a document not the user's
        on_page = [c for c in chunks if c.page_start <= page <= c.page_end]
        if not on_page:
            raise NotFoundError(f"The document has no text on page {page}.")
        text, _, _ = page_text(on_page, page, on_page[0])
        first = on_page[0]
        return PageText(
            doc_id=doc_id,
            document=first.file_name,
            title=first.title,
            collection=first.collection,
            page=page,
            location=first.cited_as(page),
            text=text,
            chunk_ids=[c.id for c in on_page],
            link=self.links.page(doc_id, page),
        )


def build_server(desk: Desk, caller_of: CallerOf) -> MCPServer:
    """The MCP server over ``desk``; ``caller_of`` gives the caller of each tool call."""
    server: MCPServer = MCPServer(
        "knowledge-desk",
        title="Knowledge Desk",
        instructions=INSTRUCTIONS,
        version=version("knowledge-desk"),
        log_level="WARNING",  # the SDK configures the root logger only if nothing else has
    )
    tools = DeskTools(desk, caller_of)
    for tool in (tools.search_knowledge, tools.ask, tools.list_documents, tools.get_passage):
        server.add_tool(tool, annotations=READ_ONLY)
    return server
