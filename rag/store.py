"""Chroma access: one client (embedded PersistentClient or a `chroma run` server) and the chunk collection.

The collection records which embedding model wrote it (provider, model id, dimension); opening it with another
model is refused with a one-line error pointing at `rag ingest --reindex`, because vectors of two models in one
collection, or a query vector of one model against another's, give meaningless similarities.

Server mode survives a restarted server: every collection call goes through ``ChunkStore._call``, which retries a
transport failure (connection refused/reset, timeout) with backoff and re-resolves the collection, then gives up
with a StoreUnavailableError that says where and what to check. A running app therefore needs no restart after
`chroma run` comes back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from rag.chunks import Chunk, ChunkId
from rag.settings import Settings

__all__ = [
    "LEXICAL_FP_KEY",
    "PROVIDER_KEY",
    "ChunkPage",
    "ChunkStore",
    "EmbeddingMismatchError",
    "StoreDamagedError",
    "StoreUnavailableError",
    "collection_names",
    "connect",
    "open_store",
    "rename_collection",
]

_PAGE = 20_000  # fewer O(offset) pages at 10^6 chunks; Chroma binds one SQL variable per id (limit 32,766)
_T = TypeVar("_T")
PROVIDER_KEY = "embed_provider"  # collection metadata: the embedding provider (beside embed_model, embed_dim)
LEXICAL_FP_KEY = "lexical_fp"  # collection metadata: fingerprint of the chunk ids the last ingest published
PAPERS_KEY = "papers"  # collection metadata: distinct papers, published with the fingerprint


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached (or the local database cannot be opened)."""


class StoreDamagedError(StoreUnavailableError):
    """Chroma answers but cannot read its own index files (e.g. after a kill during its vector-index flush)."""


class EmbeddingMismatchError(RuntimeError):
    """The collection was written by a different embedding model."""


def _is_transport_error(exc: BaseException) -> bool:
    """A failure to reach the server (worth a retry), as opposed to a rejected request."""
    import httpx

    seen: BaseException | None = exc
    while seen is not None:  # chromadb wraps some (e.g. the first heartbeat's) in a ValueError
        if isinstance(seen, httpx.TransportError | ConnectionError | TimeoutError):
            return True
        if "Could not connect to a Chroma server" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_internal_error(exc: BaseException) -> bool:
    """Chroma's "internal error": its own files or state are broken (never a bad request of ours)."""
    from chromadb.errors import InternalError

    return isinstance(exc, InternalError)


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
        headers: dict[str, str] | None = None
        if cfg.auth_token is not None:
            token = cfg.auth_token.get_secret_value()
            bearer = cfg.auth_header == "authorization"
            headers = {"Authorization": f"Bearer {token}"} if bearer else {"X-Chroma-Token": token}
        client = chromadb.HttpClient(
            host=cfg.host,
            port=cfg.port,
            ssl=cfg.ssl,
            headers=headers,
            settings=chroma_settings,
            tenant=cfg.tenant,
            database=cfg.database,
        )
        client.heartbeat()
        return client
    except Exception as exc:  # chromadb raises several unrelated types for "cannot connect"
        where = settings.store_location
        if cfg.mode == "embedded":
            hint = ""
        elif _is_transport_error(exc):
            hint = " Is `chroma run` running there? (RAG_STORE__HOST/PORT)"
        else:
            hint = (
                f" Check the token, tenant {cfg.tenant!r} and database {cfg.database!r} "
                "(RAG_STORE__AUTH_TOKEN/TENANT/DATABASE)."
            )
        reason = str(exc).rstrip(".?! ")
        raise StoreUnavailableError(f"cannot open Chroma at {where}: {reason}.{hint}") from exc


@dataclass
class ChunkPage:
    ids: list[str]
    documents: list[str]
    metadatas: list[dict[str, Any]]


class ChunkStore:
    """The chunk collection, checked against the embedding model that is about to read or write it."""

    def __init__(
        self,
        client: Any,
        name: str,
        model_id: str,
        dim: int,
        *,
        provider: str = "",
        location: str = "",
        retries: int = 0,
        backoff: float = 0.5,
    ) -> None:
        self.client = client
        self.name = name
        self.model_id = model_id
        self.dim = dim
        self.provider = provider
        self.location = location
        self.retries = retries
        self.backoff = backoff
        self._collection: Any = None

    def _call(self, op: Callable[[Any], _T]) -> _T:
        """Run ``op(collection)``; on a transport failure retry with backoff, then raise StoreUnavailableError."""
        attempt = 0
        while True:
            try:
                return op(self.collection)
            except (EmbeddingMismatchError, StoreUnavailableError):
                raise
            except Exception as exc:
                if _is_internal_error(exc):
                    raise StoreDamagedError(
                        f"Chroma cannot read the index at {self.location or 'the server'} ({exc}). Its files are "
                        "probably damaged: a process killed while Chroma flushes its vector index can leave them "
                        "half-written, which Chroma 1.5 does not repair (chroma-core/chroma#7766). Your corpus "
                        "files are untouched; `rag ingest --rebuild` re-creates the index from them."
                    ) from exc
                if not _is_transport_error(exc):
                    raise
                if attempt >= self.retries:
                    raise StoreUnavailableError(
                        f"Chroma at {self.location or 'the server'} stopped answering ({exc}); retried {attempt} "
                        "time(s). Is `chroma run` still running? The app reconnects by itself once it is back; "
                        "an interrupted ingest finishes when re-run."
                    ) from exc
                time.sleep(self.backoff * 2**attempt)
                attempt += 1
                self._collection = None  # re-resolve: the server may have restarted

    @property
    def collection(self) -> Any:
        if self._collection is None:
            # embedding_function=None: we always pass vectors ourselves; Chroma's default function would try
            # to download a model at run time, which fails offline.
            identity: dict[str, str | int] = {"embed_model": self.model_id, "embed_dim": self.dim}
            if self.provider:
                identity[PROVIDER_KEY] = self.provider
            col = self.client.get_or_create_collection(
                self.name,
                embedding_function=None,
                metadata=identity,
                configuration={"hnsw": {"space": "cosine"}},
            )
            meta = col.metadata or {}
            # A collection written before the provider was recorded is checked on model and dimension alone.
            provider = meta.get(PROVIDER_KEY, self.provider)
            if (
                meta.get("embed_model") != self.model_id
                or int(meta.get("embed_dim", 0)) != self.dim
                or (self.provider and provider != self.provider)
            ):
                stored = _described(meta.get("embed_model"), meta.get(PROVIDER_KEY))
                raise EmbeddingMismatchError(
                    f"collection {self.name!r} was indexed with {stored} "
                    f"(dim {meta.get('embed_dim')}), but {_described(self.model_id, self.provider)} (dim {self.dim}) "
                    "is configured: run `rag ingest --reindex` to index it again with the configured model (the "
                    "current index serves until the new one is complete), or set the embedding settings back."
                )
            self._collection = col
        return self._collection

    def count(self) -> int:
        return int(self._call(lambda c: c.count()))

    def query(self, **kwargs: Any) -> Any:
        return self._call(lambda c: c.query(**kwargs))

    def get(self, **kwargs: Any) -> Any:
        return self._call(lambda c: c.get(**kwargs))

    def published_fingerprint(self) -> str | None:
        """The BM25 fingerprint the last finished ingest published (fresh from the server, ~1 ms)."""

        def read(_: Any) -> str | None:
            meta = self.client.get_collection(self.name).metadata or {}
            fp = meta.get(LEXICAL_FP_KEY)
            return str(fp) if fp else None

        return self._call(read)

    def publish_fingerprint(self, fp: str, papers: int | None = None) -> None:
        """Tell every process sharing this collection which chunk set the BM25 index must describe (and how
        many papers it holds, so status displays never scan the collection)."""

        def write(col: Any) -> None:
            meta = dict(self.client.get_collection(self.name).metadata or {})
            new = {**meta, LEXICAL_FP_KEY: fp, **({PAPERS_KEY: papers} if papers is not None else {})}
            if new != meta:
                col.modify(metadata=new)

        self._call(write)

    def paper_count(self) -> int:
        """Papers in the collection: published by the last finished ingest; counted (a full scan) only for an
        index written before counts were published."""
        meta = self._call(lambda _: self.client.get_collection(self.name).metadata or {})
        if PAPERS_KEY in meta:
            return int(meta[PAPERS_KEY])
        return len({m.get("paper_id") for page in self.pages(include_documents=False) for m in page.metadatas})

    def pages(self, include_documents: bool = True) -> Iterator[ChunkPage]:
        """All chunks, a page at a time (ingest-time and index-build use only; never on the query path)."""
        include = ["metadatas", "documents"] if include_documents else ["metadatas"]
        offset = 0
        while True:
            got = self.get(include=include, limit=_PAGE, offset=offset)
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
                pid = str(meta.get("paper_id", ChunkId.parse(cid).paper_id))
                stamp = str(meta.get("stamp", ""))
                state.setdefault(pid, {}).setdefault(stamp, []).append((cid, int(meta.get("n_chunks", 0))))
        return state

    def add(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> None:
        """Write chunks with their vectors: the text, the vector and the flat metadata of each.

        Upsert, not ``collection.add`` (which skips ids that already exist): a paper half-written by a killed
        ingest must be overwritten."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        ids = [c.id for c in chunks]
        embeddings = [list(v) for v in vectors]
        documents = [c.text for c in chunks]
        metadatas: list[Any] = [dict(c.metadata) for c in chunks]
        self._call(lambda c: c.upsert(ids=ids, embeddings=embeddings, documents=documents, metadatas=metadatas))

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), _PAGE):
            part = ids[i : i + _PAGE]

            def delete_part(col: Any, part: list[str] = part) -> None:
                col.delete(ids=part)

            self._call(delete_part)

    def drop(self) -> None:
        # chromadb raises NotFoundError or ValueError (by version) for an absent collection: that is fine.
        with contextlib.suppress(Exception):
            self.client.delete_collection(self.name)
        self._collection = None


def _described(model_id: object, provider: object) -> str:
    return f"{model_id!r} ({provider})" if provider else repr(model_id)


def collection_names(client: Any) -> set[str]:
    """Names of the collections the client sees (chromadb 1.x lists Collection objects or names by version)."""
    return {getattr(c, "name", c) for c in client.list_collections()}


def rename_collection(client: Any, old: str, new: str) -> None:
    """Rename collection ``old`` to ``new`` (its chunks, vectors and metadata stay; no identity check)."""
    client.get_collection(old).modify(name=new)


def open_store(settings: Settings, client: Any = None, collection: str | None = None) -> ChunkStore:
    """The chunk store for ``settings`` (connecting unless a client is given); ``collection`` overrides the
    collection name (the re-index builds into a side collection)."""
    from rag.embeddings import embedder_identity

    model_id, dim = embedder_identity(settings.embedding)
    cfg = settings.store
    return ChunkStore(
        client or connect(settings),
        collection or cfg.collection,
        model_id,
        dim,
        provider=settings.embedding.provider,
        location=settings.store_location,
        retries=cfg.retries if cfg.mode == "server" else 0,
        backoff=cfg.retry_backoff,
    )
