"""Re-index for another embedding model without losing the current index on the way (`rag ingest --reindex`).

A collection is only ever read with the model that wrote it (rag.store refuses anything else), so a new model
means new vectors for every chunk. They are written into a side collection ``<name>__reindex`` by the ordinary
incremental ingest, while ``<name>`` keeps serving. Only once the side collection is complete are the two swapped:
``<name>`` becomes ``<name>__previous`` (kept for a rollback; the next re-index replaces it) and the side collection
becomes ``<name>``, each with its BM25 directory. A re-index killed while embedding resumes where it stopped when
re-run (the side collection is planned against like any index); one killed during the swap finishes it when re-run.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ingest.pipeline import Ingestor, IngestReport
from rag.ingest_lock import ingest_lock
from rag.lexical_sync import sync_lexical
from rag.protocols import Embedder
from rag.settings import Settings
from rag.store import EmbeddingMismatchError, collection_names, connect, open_store, rename_collection

__all__ = ["PREVIOUS_SUFFIX", "REINDEX_SUFFIX", "reindex", "side_names"]

REINDEX_SUFFIX = "__reindex"
PREVIOUS_SUFFIX = "__previous"


def side_names(name: str) -> tuple[str, str]:
    """(the collection a re-index builds, the one the replaced index is kept as); ValueError if too long."""
    side, previous = name + REINDEX_SUFFIX, name + PREVIOUS_SUFFIX
    if len(previous) > 63:  # Chroma's limit on collection names
        raise ValueError(f"collection name {name!r} is too long to re-index beside it: use at most 53 characters")
    return side, previous


def _with_collection(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"store": settings.store.model_copy(update={"collection": name})})


def _move_dir(source: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    if source.exists():
        source.replace(target)


def _matches(settings: Settings, client: Any) -> bool:
    """Whether the collection exists and was written by the configured model."""
    if settings.store.collection not in collection_names(client):
        return False
    try:
        open_store(settings, client).count()
    except EmbeddingMismatchError:
        return False
    return True


def reindex(
    settings: Settings,
    paths: Sequence[Path | str],
    fmt: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    client: Any = None,
    embedder: Embedder | None = None,
) -> IngestReport:
    """Index ``paths`` with the configured embedding model into a side collection, then swap it in for
    ``settings.store.collection``; a collection already written by this model just gets an ordinary ingest.
    Returns the ingest's report. Raises ValueError (nothing swapped) when no paper could be read."""
    name = settings.store.collection
    side, previous = side_names(name)
    client = client or connect(settings)
    if side not in collection_names(client) and _matches(settings, client):
        # Already indexed with this model (or a re-index finished its swap): an ordinary incremental ingest.
        return Ingestor(settings, open_store(settings, client), embedder).ingest_paths(paths, fmt, progress)
    side_settings = _with_collection(settings, side)
    side_store = open_store(side_settings, client)
    try:
        side_store.count()
    except EmbeddingMismatchError:
        with ingest_lock(settings.data_dir):  # a leftover of a re-index for yet another model
            side_store.drop()
            shutil.rmtree(side_settings.bm25_path, ignore_errors=True)
    report = Ingestor(side_settings, side_store, embedder).ingest_paths(paths, fmt, progress)
    if side_store.count() == 0:
        raise ValueError(
            f"the re-index read no papers from {', '.join(map(str, paths))}: nothing was swapped, "
            f"collection {name!r} is unchanged"
        )
    with ingest_lock(settings.data_dir):
        names = collection_names(client)
        if name in names:
            if previous in names:
                client.delete_collection(previous)
            rename_collection(client, name, previous)
            _move_dir(settings.bm25_path, _with_collection(settings, previous).bm25_path)
        rename_collection(client, side, name)
        _move_dir(side_settings.bm25_path, settings.bm25_path)
        # The fingerprint travelled with the collection; this only rebuilds BM25 if its directory did not.
        sync_lexical(open_store(settings, client), settings.bm25_path)
    return report
