"""Ingesting into an index that a running assistant serves: an uploaded file made searchable at once, and the
bundled corpus on a first launch. Used by the UI's Corpus tab, the UI's start-up and the red-team harness."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ingest.pipeline import Ingestor, IngestReport
from rag.assistant import Assistant
from rag.lexical import LexicalIndex
from rag.lexical_sync import LexicalView
from rag.protocols import Embedder
from rag.settings import Settings
from rag.store import ChunkStore

__all__ = ["ensure_index", "ingest_file"]

_INGEST_LOCK = threading.Lock()  # one ingest at a time per process: the BM25 rebuild replaces one directory


def ingest_file(
    assistant: Assistant, path: Path, fmt: str | None, progress: Callable[[int, int], None] | None = None
) -> IngestReport:
    """Ingest ``path`` (format detected when ``fmt`` is None) into the assistant's index and make the new papers
    searchable at once (the retriever's BM25 index is reloaded). Bad records and bad files end up in
    ``report.rejected``; nothing already indexed is removed (an ingest only adds or updates papers)."""
    retriever = assistant.retriever
    with _INGEST_LOCK:
        report = Ingestor(assistant.settings, retriever.store, retriever.embedder).ingest_paths([path], fmt, progress)
        if report.lexical_rebuilt:
            if isinstance(retriever.lexical, LexicalView):
                retriever.lexical.reload()
            else:
                bm25 = assistant.settings.bm25_path
                retriever.lexical = LexicalIndex.load(bm25) if LexicalIndex.stored_fingerprint(bm25) else None
    return report


def ensure_index(
    settings: Settings, store: ChunkStore, embedder: Embedder, echo: Callable[[str], None] = lambda _: None
) -> None:
    """First launch: ingest the bundled corpus (``settings.corpus_dir``) into an empty index, saying so through
    ``echo``. Also the core's ``CorpusLoader`` (registered in pyproject.toml) behind ``Assistant.open()``."""
    if store.count() > 0:
        return
    echo(f"The index at {settings.data_dir} is empty: indexing {settings.corpus_dir} (first launch only) ...")
    step = {"next": 0}

    def progress(done: int, total: int) -> None:
        if total and (done >= step["next"] or done == total):
            echo(f"  indexed {done}/{total} papers")
            step["next"] = done + max(1, total // 10)

    report = Ingestor(settings, store, embedder).ingest_paths([settings.corpus_dir], None, progress)
    echo(f"Index ready: {report.summary()}")
    for line in report.rejected[:20]:
        echo(f"  rejected: {line}")
