"""Domain types shared by ingest, retrieval, the UI and evals."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Mode", "Paper", "Probe", "TokenCounter"]


class Mode(StrEnum):
    """Retrieval modes (the one list: settings, CLI choices, the UI's radio and the evals read it)."""

    HYBRID = "hybrid"  # dense + BM25, BM25 weighted by the evidence it has for this query (rag.fusion)
    DENSE = "dense"
    BM25 = "bm25"
    RRF = "rrf"  # reciprocal rank fusion of dense and BM25, one global mix

    @classmethod
    def parse(cls, value: str) -> Mode:
        """``value`` as a mode; ValueError naming the choices otherwise (fit to show a user)."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown retrieval mode {value!r}; choose one of {', '.join(cls)}") from None


TokenCounter = Callable[[str], int]
"""Counts the tokens of a text in one tokenizer (each counter is named for the tokenizer it counts in)."""


@dataclass(frozen=True)
class Paper:
    """One deduplicated paper. ``paper_id`` is stable across runs (source id, or derived from the title)."""

    paper_id: str
    title: str
    abstract: str
    sources: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str | None = None
    arxiv_id: str | None = None
    categories: tuple[str, ...] = ()
    content_hash: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.content_hash:
            object.__setattr__(self, "content_hash", self.compute_hash())

    def compute_hash(self) -> str:
        """Hash of the paper's content stored with the chunks: a change means the chunks are rewritten. ``sources``
        (the file names it was read from) are provenance, not content: renaming a file re-embeds nothing, and the
        stored ``sources`` keep the old name until the paper itself changes."""
        payload = json.dumps(
            [
                self.title,
                self.abstract,
                self.authors,
                self.year,
                self.url,
                self.arxiv_id,
                self.categories,
            ],
            ensure_ascii=False,
        )
        # surrogatepass: a Paper built around ingest's normaliser must still hash, not crash the run.
        return hashlib.sha1(payload.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], abstract: str) -> Paper:
        """The paper back from one of its chunks' stored metadata (the inverse of ``chroma_metadata``)."""

        def split(key: str, sep: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in str(meta.get(key) or "").split(sep) if part.strip())

        year = meta.get("year")
        return cls(
            paper_id=str(meta["paper_id"]),
            title=str(meta.get("title", "")),
            abstract=abstract,
            sources=split("sources", ","),
            authors=split("authors", ","),
            year=int(year) if isinstance(year, int | float) and not isinstance(year, bool) else None,
            url=str(meta["url"]) if meta.get("url") else None,
            arxiv_id=str(meta["arxiv_id"]) if meta.get("arxiv_id") else None,
            categories=split("categories", " "),
            content_hash=str(meta.get("content_hash", "")),
        )

    def public_dict(self) -> dict[str, Any]:
        """What the HTTP API and the MCP server show of a paper (not its provenance or content hash)."""
        return {
            "paper_id": self.paper_id,
            "title": self.title,
            "abstract": self.abstract,
            "authors": list(self.authors),
            "year": self.year,
            "url": self.url,
            "arxiv_id": self.arxiv_id,
            "categories": list(self.categories),
        }

    def chroma_metadata(self) -> dict[str, str | int]:
        """Flat metadata for Chroma (scalar values only); lists are joined so `$contains`-style filters work."""
        meta: dict[str, str | int] = {
            "paper_id": self.paper_id,
            "title": self.title,
            "content_hash": self.content_hash,
            "sources": ",".join(self.sources),
        }
        if self.authors:
            meta["authors"] = ", ".join(self.authors)
        if self.year is not None:
            meta["year"] = self.year
        if self.url:
            meta["url"] = self.url
        if self.arxiv_id:
            meta["arxiv_id"] = self.arxiv_id
        if self.categories:
            meta["categories"] = " ".join(self.categories)
            # One flag per category, so a category filter is a plain Chroma `where` ({"cat:cs.CL": 1}).
            for cat in self.categories:
                meta[f"cat:{cat}"] = 1
        return meta


@dataclass(frozen=True)
class Probe:
    """One search standing for the user's question (rag.rewrite): the dense side searches ``query``'s vector, or
    its mean with ``passage``'s (a hypothetical abstract, embedded as a document); BM25 searches ``lexical``, or
    ``query`` when it is empty."""

    query: str
    passage: str = ""
    lexical: str = ""

    @property
    def bm25_text(self) -> str:
        return self.lexical or self.query


@dataclass(frozen=True)
class Source:
    """A retrieved paper shown to the answerer, numbered ``n`` (1-based) in the order shown."""

    n: int
    paper_id: str
    title: str
    abstract: str
    score: float
    best_chunk: str
    metadata: dict[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    """One cited paper: ``n`` is its number in the answer text ([n]), ``quote`` the sentence of its abstract that
    best supports what the answer says, ``score`` that support (0..1), ``supported`` whether it passes the check."""

    n: int
    paper_id: str
    title: str
    quote: str
    score: float
    supported: bool = True
