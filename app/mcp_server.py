"""`rag mcp`: the assistant as an MCP server (the official `mcp` SDK), for coding and writing agents.

Tools: ``search_papers`` (ranked papers, no answer), ``ask`` (the answer text with its references, plus the
structured Answer: outcome, citations with paper id, title, quote and support score), ``get_paper``. Resources:
``paper://{paper_id}``. Transports: stdio (default), or streamable HTTP on loopback with ``--port``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from app.failures import USER_FACING
from rag.assistant import Assistant
from rag.retrieve import Filters
from rag.types import Paper

__all__ = ["PaperResult", "build_mcp"]

INSTRUCTIONS = (
    "Answers questions about a corpus of ML paper abstracts. Every claim in an `ask` answer cites an abstract "
    "as [n], checked against that abstract; the outcome says whether the abstracts answer the question "
    "('answered'), answer it without the detail asked for ('partial', naming what is missing), or do not cover "
    "it ('refused'). Use `search_papers` to find papers, `get_paper` for one paper's abstract."
)


class PaperResult(BaseModel):
    paper_id: str
    title: str
    score: float
    best_chunk: str
    year: int | None = None
    url: str | None = None


class PaperRecord(BaseModel):
    paper_id: str
    title: str
    abstract: str
    authors: list[str]
    year: int | None
    url: str | None
    arxiv_id: str | None
    categories: list[str]

    @classmethod
    def of(cls, paper: Paper) -> PaperRecord:
        return cls(**paper.public_dict())


@contextmanager
def _as_tool_error() -> Iterator[None]:
    try:
        yield
    except USER_FACING as exc:
        raise ToolError(str(exc)) from exc


def _year(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_mcp(assistant: Assistant) -> MCPServer:
    server: MCPServer = MCPServer(name="paper-rag", instructions=INSTRUCTIONS)

    @server.tool()
    def search_papers(
        query: str,
        k: int = 10,
        year_min: int | None = None,
        year_max: int | None = None,
        categories: list[str] | None = None,
    ) -> list[PaperResult]:
        """Papers whose abstracts best match ``query``, best first (no answer). Optional filters: publication
        years and arXiv categories (e.g. cs.CL; a paper matches if it has any of them)."""
        filters = Filters(year_min, year_max, tuple(categories or ()))
        with _as_tool_error():
            hits = assistant.retrieve(query, k=k, filters=filters if filters.where() else None)
        return [
            PaperResult(
                paper_id=h.paper_id,
                title=h.title,
                score=h.score,
                best_chunk=h.best_chunk,
                year=_year(h.metadata.get("year")),
                url=str(h.metadata["url"]) if h.metadata.get("url") else None,
            )
            for h in hits
        ]

    @server.tool()
    def ask(question: str) -> CallToolResult:
        """Answer ``question`` from the indexed abstracts, citing them as [n]. Returns the answer with its
        references as text, and the structured answer (outcome, missing detail, citations with paper ids and the
        quoted sentence that supports each)."""
        with _as_tool_error():
            answer = assistant.ask(question)
        text = TextContent(type="text", text=answer.to_markdown(question=False))
        return CallToolResult(content=[text], structured_content=answer.to_dict(sentences=False))

    @server.tool()
    def get_paper(paper_id: str) -> PaperRecord:
        """One indexed paper: title, abstract, authors, year, URL, arXiv id, categories."""
        with _as_tool_error():
            paper = assistant.paper(paper_id)
        if paper is None:
            raise ToolError(f"no indexed paper has the id {paper_id!r}: find ids with search_papers")
        return PaperRecord.of(paper)

    @server.resource("paper://{paper_id}", mime_type="text/markdown")
    def paper_resource(paper_id: str) -> str:
        """A paper's title and abstract."""
        try:
            paper = assistant.paper(paper_id)
        except USER_FACING as exc:
            raise ResourceError(str(exc)) from exc
        if paper is None:
            raise ResourceError(f"no indexed paper has the id {paper_id!r}")
        return f"# {paper.title}\n\n{paper.abstract}\n"

    return server
