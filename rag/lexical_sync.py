"""Keeping each process's BM25 index in step with a Chroma collection that other processes may change.

Chroma has no lexical ranking of its own in single-node mode (sparse/BM25 indexes are Chroma Cloud only in
chromadb 1.5: chroma-core/chroma#6185, #6716), so BM25 lives next to each app process (bm25s, on local disk).
The protocol:

- the collection's content is named by ``fingerprint(chunk ids)`` (ids embed each paper's content stamp);
- an ingest, when it has finished writing, rebuilds its BM25 index and *publishes* that fingerprint in the
  collection's metadata (``ChunkStore.publish_fingerprint``);
- every app process (a ``LexicalView``) reads the published fingerprint at most every ``lexical_refresh`` seconds
  (one ~1 ms metadata call) and, when it differs from the index it serves, loads the index from its data dir if a
  process on this machine already rebuilt it, or rebuilds it from the collection in a background thread while
  queries keep using the old one. Two processes sharing a data dir rebuild under a file lock.

Between an ingest's first write and its publish, BM25 may briefly describe the previous content: hits on deleted
chunks are dropped when they are fetched from Chroma, and new chunks are found by the dense side only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock

from rag.chunks import ChunkId, embed_text
from rag.lexical import LexicalIndex, fingerprint, tokenize_pages
from rag.store import ChunkStore

__all__ = ["LexicalView", "rebuild_lexical", "sync_lexical"]


def _lock(path: Path) -> FileLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")))


def rebuild_lexical(store: ChunkStore, path: Path, reuse: bool = True) -> LexicalIndex:
    """Read every chunk of the collection and (re)write the BM25 index at ``path`` (under a file lock).
    ``reuse``: keep the index on disk if it already describes exactly these chunks."""

    def pages() -> Iterator[tuple[list[str], list[str]]]:
        for page in store.pages():
            texts = [
                embed_text(str(meta.get("title", "")), doc or "")
                for doc, meta in zip(page.documents, page.metadatas, strict=True)
            ]
            yield page.ids, texts

    ids, tokenized = tokenize_pages(pages())
    with _lock(path):
        if reuse and LexicalIndex.stored_fingerprint(path) == fingerprint(ids):
            return LexicalIndex.load(path)  # another process sharing this data dir got there first
        return LexicalIndex.build(path, ids, tokenized)


def sync_lexical(store: ChunkStore, path: Path, force: bool = False, known_ids: list[str] | None = None) -> bool:
    """After an ingest: make the BM25 index at ``path`` describe exactly the collection, then publish its
    fingerprint for the other processes. Returns whether the index was rebuilt.

    ``known_ids``: the collection's chunk ids when the caller already has them (an ingest that changed nothing),
    so the unchanged case reads no documents at all."""
    if not force and known_ids is not None:
        fp = fingerprint(known_ids)
        if LexicalIndex.stored_fingerprint(path) == fp:
            store.publish_fingerprint(fp, _papers(known_ids))
            return False
    before = LexicalIndex.stored_fingerprint(path)
    index = rebuild_lexical(store, path, reuse=not force)
    store.publish_fingerprint(index.fingerprint, _papers(index.ids))
    return force or index.fingerprint != before


def _papers(chunk_ids: list[str]) -> int:
    return len({ChunkId.parse(cid).paper_id for cid in chunk_ids})


class LexicalView:
    """The BM25 index one process serves, refreshed when the collection's published fingerprint changes.

    ``current()`` is called per query and costs at most one metadata read every ``refresh`` seconds."""

    def __init__(
        self,
        store: ChunkStore,
        path: Path,
        refresh: float = 2.0,
        index: LexicalIndex | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.path = path
        self.refresh = refresh
        self._index = index
        self._clock = clock
        self._checked_at: float | None = None
        self._attempted: str | None = None  # the published fingerprint we last rebuilt for
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self.error: BaseException | None = None  # the last background rebuild failure, if any

    @classmethod
    def open(cls, store: ChunkStore, path: Path, refresh: float = 2.0) -> LexicalView:
        """Load the local index; build it from the collection first when there is none (a new worker)."""
        index = LexicalIndex.load(path) if LexicalIndex.stored_fingerprint(path) else None
        view = cls(store, path, refresh, index)
        view.check(block=index is None)
        return view

    @property
    def index(self) -> LexicalIndex | None:
        return self._index

    def current(self) -> LexicalIndex | None:
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self.refresh:
            self.check()
        return self._index

    def check(self, block: bool = False) -> bool:
        """Compare with the published fingerprint; start (or, with ``block``, run) a refresh if they differ.
        Returns whether a refresh was started."""
        self._checked_at = self._clock()
        published = self.store.published_fingerprint()
        have = self._index.fingerprint if self._index is not None else None
        if published is None:
            # Never published (an index written before publishing existed): trust the local index if any.
            if self._index is not None or self.store.count() == 0:
                return False
        elif published == have or published == self._attempted:
            return False
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return False
            self._attempted = published
            if block:
                self._refresh(published)
                return True
            self._worker = threading.Thread(target=self._refresh, args=(published,), daemon=True)
            self._worker.start()
            return True

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background refresh (if any) has finished."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def reload(self) -> None:
        """Serve what is on disk now (after this process ingested)."""
        if LexicalIndex.stored_fingerprint(self.path):
            self._index = LexicalIndex.load(self.path)
            self._attempted = self._index.fingerprint

    def _refresh(self, published: str | None) -> None:
        try:
            if published is not None and LexicalIndex.stored_fingerprint(self.path) == published:
                self._index = LexicalIndex.load(self.path)  # rebuilt by a process sharing this data dir
            else:
                self._index = rebuild_lexical(self.store, self.path)
            self.error = None
        except Exception as exc:  # a background thread must not die silently: keep serving the old index
            self.error = exc
            self._attempted = None  # try again at the next check
