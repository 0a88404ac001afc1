"""What the index holds, as the Corpus tab shows it (uploads go through ``ingest.live``)."""

from __future__ import annotations

from dataclasses import dataclass

from rag.assistant import Assistant

__all__ = ["IndexStatus", "index_status"]


@dataclass(frozen=True)
class IndexStatus:
    papers: int
    chunks: int
    model: str
    where: str


def index_status(assistant: Assistant) -> IndexStatus:
    """Papers, chunks, embedding model and location of the index (two cheap calls: shown on every page load)."""
    store = assistant.retriever.store
    return IndexStatus(store.paper_count(), store.count(), store.model_id, assistant.settings.store_location)
