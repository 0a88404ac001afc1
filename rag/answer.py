"""The Answer: what the Python API, the CLI, the UI and the eval harness all receive."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rag import export
from rag.citations import SentenceSupport
from rag.types import Citation, Source

__all__ = ["OUTCOMES", "Answer", "Outcome"]

Outcome = Literal["answered", "partial", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "partial", "refused")


@dataclass(frozen=True)
class Answer:
    """``text`` cites sources as [n]; ``citations`` lists exactly the papers cited in it, in [n] order;
    ``sources`` every paper shown to the answerer (cited or not). ``outcome``: "answered"; "partial" (the relevant
    paper is found and cited, but the detail asked for is not in its abstract: ``missing`` names it); or "refused"
    (the indexed abstracts do not cover the question; ``refusal_reason`` says why)."""

    question: str
    query: str  # the standalone query that was searched (differs from question for follow-ups)
    text: str
    citations: list[Citation]
    sources: list[Source]
    outcome: Outcome
    mode: str  # "extractive" or "llm"
    mode_note: str  # one line saying which mode answered and how to change it
    sentences: list[SentenceSupport] = field(default_factory=list)
    refusal_reason: str = ""
    missing: str = ""  # partial answers: the detail the question asks for that the abstract does not give
    flags: list[str] = field(default_factory=list)  # e.g. citations removed or unsupported
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        """True exactly when the outcome is "refused"."""
        return self.outcome == "refused"

    def to_dict(self, *, sentences: bool = True) -> dict[str, Any]:
        """Everything as JSON-ready data; ``sentences=False`` leaves out the per-sentence support scores (large;
        the citations carry their own), as the HTTP API and the MCP server send it."""
        data = {**asdict(self), "refused": self.refused}
        if not sentences:
            del data["sentences"]
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def references_markdown(self) -> str:
        """Numbered references: title and the supporting sentence."""
        lines = [f"[{c.n}] {c.title} — “{c.quote}”" for c in self.citations]
        return "\n".join(lines)

    def to_bibtex(self, *, abstracts: bool = False) -> str:
        """The cited papers as a .bib file (@misc entries, stable keys, arXiv eprint/DOI and URL when known); ""
        when nothing is cited. ``print(assistant.ask("What is ClusterNS?").to_bibtex())``"""
        return export.bibtex(export.cited_papers(self.citations, self.sources), abstracts=abstracts)

    def to_csl_json(self, *, abstracts: bool = False) -> str:
        """The cited papers as CSL-JSON (an array; "[]" when nothing is cited), ids equal to the BibTeX keys."""
        return export.csl_json(export.cited_papers(self.citations, self.sources), abstracts=abstracts)

    def to_markdown(self, *, question: bool = True) -> str:
        """The question (unless ``question=False``), the answer and its numbered references (linked when a URL is
        known), as Markdown."""
        return export.answer_markdown(self, question=question)
