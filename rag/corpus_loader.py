"""Filling an empty index with the bundled corpus, without the core importing ``ingest``.

``Assistant.open()`` promises a working assistant on a fresh machine, which means ingesting the bundled corpus
into an empty index. The ingest pipeline builds on the core, so the core cannot import it: it names what it needs
(``CorpusLoader``) and finds the implementation the ``ingest`` package registers under an entry-point group
(``pyproject.toml``), the standard Python plug-in mechanism. The import arrow keeps pointing down.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rag.protocols import Embedder
    from rag.settings import Settings
    from rag.store import ChunkStore

__all__ = ["ENTRY_POINT_GROUP", "CorpusLoader", "NoCorpusLoaderError", "installed_loader"]

ENTRY_POINT_GROUP = "paper_rag.corpus_loaders"
LOADER_NAME = "bundled"


class CorpusLoader(Protocol):
    """Ingests ``settings.corpus_dir`` into ``store`` (embedding with ``embedder``)."""

    def __call__(self, settings: Settings, store: ChunkStore, embedder: Embedder) -> None: ...


class NoCorpusLoaderError(RuntimeError):
    """The index is empty and no package provides a corpus loader (the project is not installed)."""


def installed_loader() -> CorpusLoader:
    found = entry_points(group=ENTRY_POINT_GROUP, name=LOADER_NAME)
    if not found:
        raise NoCorpusLoaderError(
            "the index is empty and no corpus loader is installed (pip install -e . registers it): run `rag ingest`"
        )
    loader: CorpusLoader = next(iter(found)).load()
    return loader
