"""The Answer: what the Python API, the CLI, the UI and the eval harness all receive."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rag.citations import SentenceSupport
from rag.types import Citation, Source

__all__ = ["Answer"]


@dataclass(frozen=True)
class Answer:
    """``text`` cites sources as [n]; ``citations`` lists exactly the papers cited in it, in [n] order;
    ``sources`` every paper shown to the answerer (cited or not); ``refused`` when the corpus does not answer."""

    question: str
    query: str  # the standalone query that was searched (differs from question for follow-ups)
    text: str
    citations: list[Citation]
    sources: list[Source]
    refused: bool
    mode: str  # "extractive" or "llm"
    mode_note: str  # one line saying which mode answered and how to change it
    sentences: list[SentenceSupport] = field(default_factory=list)
    refusal_reason: str = ""
    flags: list[str] = field(default_factory=list)  # e.g. citations removed or unsupported
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def references_markdown(self) -> str:
        """Numbered references: title and the supporting sentence."""
        lines = [f"[{c.n}] {c.title} — “{c.quote}”" for c in self.citations]
        return "\n".join(lines)
