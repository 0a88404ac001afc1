"""Chroma access: one client (embedded PersistentClient or a `chroma run` server) and the chunk collection.

The collection records which embedding model wrote it; opening it with another model is refused, because
vectors of two models in one collection give meaningless similarities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rag.settings import Settings

__all__ = [
    "ChunkPage",
    "ChunkStore",
    "EmbeddingMismatchError",
    "StoreUnavailableError",
    "connect",
    "open_store",
]

_PAGE = 5_000


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached (or the local database cannot be opened)."""


class EmbeddingMismatchError(RuntimeError):
    """The collection was written by a different embedding model."""


def connect(settings: Settings) -> Any:
    """A Chroma client for the configured mode. Raises StoreUnavailableError with what to check."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    cfg = settings.store
    try:
        if cfg.mode == "embedded":
            settings.chroma_path.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(settings.chroma_path), settings=chroma_settings)
        headers = {"Authorization": f"Bearer {cfg.auth_token.get_secret_value()}"} if cfg.auth_token else None
        client = chromadb.HttpClient(
            host=cfg.host, port=cfg.port, ssl=cfg.ssl, headers=headers, settings=chroma_settings
        )
        client.heartbeat()
        return client
    except Exception as exc:  # chromadb raises several unrelated types for "cannot connect"
        where = str(settings.chroma_path) if cfg.mode == "embedded" else f"{cfg.host}:{cfg.port}"
        hint = "" if cfg.mode == "embedded" else " Is `chroma run` running there? (RAG_STORE__HOST/PORT)"
        reason = str(exc).rstrip(".?! ")
        raise StoreUnavailableError(f"cannot open Chroma at {where}: {reason}.{hint}") from exc


@dataclass
class ChunkPage:
    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]


class ChunkStore:
    """The chunk collection, checked against the embedding model that is about to read or write it."""

    def __init__(self, client: Any, name: str, model_id: str, dim: int) -> None:
        self.client = client
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self._collection: Any = None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            # embedding_function=None: we always pass vectors ourselves; Chroma's default function would try
            # to download a model at run time, which fails offline.
            col = self.client.get_or_create_collection(
                self.name,
                embedding_function=None,
                metadata={"embed_model": self.model_id, "embed_dim": self.dim},
                configuration={"hnsw": {"space": "cosine"}},
            )
            meta = col.metadata or {}
            if meta.get("embed_model") != self.model_id or int(meta.get("embed_dim", 0)) != self.dim:
                raise EmbeddingMismatchError(
                    f"collection {self.name!r} holds embeddings of {meta.get('embed_model')!r} "
                    f"(dim {meta.get('embed_dim')}), but {self.model_id!r} (dim {self.dim}) is configured. "
                    "Use another collection (RAG_STORE__COLLECTION) or re-ingest with --rebuild."
                )
            self._collection = col
        return self._collection

    def count(self) -> int:
        return int(self.collection.count())

    def pages(self, include_documents: bool = True) -> Iterator[ChunkPage]:
        """All chunks, a page at a time (ingest-time and index-build use only; never on the query path)."""
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        offset = 0
        while True:
            got = self.collection.get(include=include, limit=_PAGE, offset=offset)
            ids = list(got["ids"])
            if not ids:
                return
            docs = list(got["documents"]) if include_documents else [""] * len(ids)
            yield ChunkPage(ids=ids, documents=docs, metadatas=[dict(m or {}) for m in got["metadatas"]])
            offset += len(ids)

    def paper_state(self) -> dict[str, dict[str, list[tuple[str, int]]]]:
        """paper_id -> stamp -> [(chunk id, n_chunks)] for what is stored now."""
        state: dict[str, dict[str, list[tuple[str, int]]]] = {}
        for page in self.pages(include_documents=False):
            for cid, meta in zip(page.ids, page.metadatas, strict=True):
                pid = str(meta.get("paper_id", cid.split("#", 1)[0]))
                stamp = str(meta.get("stamp", ""))
                state.setdefault(pid, {}).setdefault(stamp, []).append((cid, int(meta.get("n_chunks", 0))))
        return state

    def add(self, nodes: list[Any]) -> None:
        """Write embedded llama-index nodes (upsert: re-writing a half-written paper is harmless)."""
        from llama_index.core.schema import MetadataMode
        from llama_index.core.vector_stores.utils import node_to_metadata_dict

        # ChromaVectorStore.add uses collection.add, which skips ids that already exist; a paper half-written
        # by a killed ingest must be overwritten, so upsert with the same metadata layout llama-index reads.
        self.collection.upsert(
            ids=[n.node_id for n in nodes],
            embeddings=[n.get_embedding() for n in nodes],
            documents=[n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes],
            metadatas=[node_to_metadata_dict(n, remove_text=True, flat_metadata=True) for n in nodes],
        )

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), _PAGE):
            self.collection.delete(ids=ids[i : i + _PAGE])

    def drop(self) -> None:
        # chromadb raises NotFoundError or ValueError (by version) for an absent collection: that is fine.
        with contextlib.suppress(Exception):
            self.client.delete_collection(self.name)
        self._collection = None

    def vector_store(self) -> Any:
        """The same collection as a llama-index ChromaVectorStore (for retrievers)."""
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return ChromaVectorStore(chroma_collection=self.collection)


def open_store(settings: Settings, client: Any = None) -> ChunkStore:
    """The chunk store for ``settings`` (connecting unless a client is given)."""
    from rag.embeddings import embedder_identity

    model_id, dim = embedder_identity(settings.embedding)
    return ChunkStore(client or connect(settings), settings.store.collection, model_id, dim)
