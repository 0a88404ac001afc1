"""Ingest: read files -> dedup -> plan against Chroma -> chunk + embed + write in batches -> delete stale ->
bring the BM25 index in step. Incremental, idempotent and safe to kill at any point (see ingest.plan)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ingest.conflicts import id_conflicts
from ingest.dedup import dedup
from ingest.formats import read_paths
from ingest.plan import plan_ingest
from rag.chunks import Chunk
from rag.embeddings import embedder_identity, wordpiece_counter
from rag.ingest_lock import ingest_lock
from rag.lexical_sync import sync_lexical
from rag.protocols import Embedder
from rag.settings import Settings
from rag.store import ChunkStore
from rag.types import Paper

__all__ = ["IngestReport", "Ingestor"]

Progress = Callable[[int, int], None]  # (papers written so far, papers to write)


@dataclass
class IngestReport:
    seen: int = 0  # distinct papers read
    records: int = 0  # records read before dedup
    new: int = 0
    updated: int = 0
    repaired: int = 0
    unchanged: int = 0
    rejected: list[str] = field(default_factory=list)  # "file:line: reason", and whole-file errors
    warnings: list[str] = field(default_factory=list)  # indexed, but the user should know (duplicate ids)
    chunks_written: int = 0
    chunks_deleted: int = 0
    total_chunks: int = 0
    lexical_rebuilt: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        return (
            f"papers seen {self.seen} (from {self.records} records): new {self.new}, updated {self.updated}, "
            f"repaired {self.repaired}, unchanged {self.unchanged}, rejected {len(self.rejected)}; "
            f"chunks written {self.chunks_written}, deleted {self.chunks_deleted}, in index {self.total_chunks}; "
            f"{self.seconds:.1f} s"
        )


class Ingestor:
    """Writes papers into the chunk store. Clients are passed in: built once by the caller (CLI, UI, tests)."""

    def __init__(self, settings: Settings, store: ChunkStore, embedder: Embedder | None = None) -> None:
        model_id, dim = embedder_identity(settings.embedding)
        if (store.model_id, store.dim) != (model_id, dim):
            raise ValueError("store and settings disagree on the embedding model")
        self.settings = settings
        self.store = store
        self._embedder = embedder

    @property
    def embedder(self) -> Embedder:
        # Built lazily: an ingest with nothing to write never loads the model (re-ingest stays ~1 s).
        if self._embedder is None:
            from rag.embeddings import build_embedder

            self._embedder = build_embedder(self.settings.embedding, self.settings.models_dir)
        return self._embedder

    def ingest_paths(
        self, paths: Sequence[Path | str], fmt: str | None = None, progress: Progress | None = None
    ) -> IngestReport:
        start = time.perf_counter()
        with ingest_lock(self.settings.data_dir):
            read, file_errors = read_paths([Path(p) for p in paths], fmt)
            report = IngestReport(records=len(read.records))
            report.rejected = [*file_errors, *(str(r) for r in read.rejections)]
            report.warnings = id_conflicts(read.records)
            papers = dedup(read.records)
            del read  # the records and papers are dropped before the BM25 rebuild (~3 GB at 10^6 papers)
            known_ids = self._write_papers(papers, report, progress)
            del papers
            self._sync_lexical(report, known_ids)
        report.seconds = time.perf_counter() - start
        return report

    def _write_papers(self, papers: list[Paper], report: IngestReport, progress: Progress | None) -> list[str] | None:
        """Write new and changed papers, delete stale chunks. Returns the collection's chunk ids when nothing
        changed (so the BM25 check reads no documents), else None."""
        from ingest.chunk import chunk_paper, chunk_stamp

        cfg = self.settings.chunking
        report.seen = len(papers)
        stamps = {p.paper_id: chunk_stamp(p, cfg.max_tokens, cfg.prefix_title) for p in papers}
        stored = self.store.paper_state()
        plan = plan_ingest(papers, stamps, stored)
        report.new, report.updated, report.repaired, report.unchanged = (
            plan.new,
            plan.updated,
            plan.repaired,
            plan.unchanged,
        )
        if plan.write and hasattr(self.embedder, "load"):
            # Load the model while the first papers are chunked (hides ~2 s of sentence splitting).
            threading.Thread(target=self.embedder.load, daemon=True).start()
        count = wordpiece_counter()
        batch: list[Chunk] = []
        if progress:
            progress(0, len(plan.write))
        # One writer thread embeds and upserts batch i while this thread chunks batch i+1 (the model and
        # Chroma's Rust core release the GIL). At most one batch is in flight, and batches are written in order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as writer:
            pending: Future[int] | None = None

            def finish(fut: Future[int] | None) -> None:
                if fut is not None:
                    report.chunks_written += fut.result()  # re-raises a failed write here
                    if progress:
                        progress(written_papers[0], len(plan.write))

            written_papers = [0]
            for i, paper in enumerate(plan.write):
                # Batches end on paper boundaries, so every upsert holds whole papers.
                batch.extend(chunk_paper(paper, cfg.max_tokens, count, cfg.prefix_title))
                last = i == len(plan.write) - 1
                if len(batch) >= self.settings.store.write_batch or last:
                    finish(pending)
                    pending = writer.submit(self._write, batch, i + 1, written_papers)
                    batch = []
            finish(pending)
        if plan.stale_ids:
            self.store.delete(plan.stale_ids)
            report.chunks_deleted = len(plan.stale_ids)
        if plan.write or plan.stale_ids:
            return None
        return [cid for stamps_ in stored.values() for chunks in stamps_.values() for cid, _ in chunks]

    def _sync_lexical(self, report: IngestReport, known_ids: list[str] | None) -> None:
        report.lexical_rebuilt = sync_lexical(self.store, self.settings.bm25_path, known_ids=known_ids)
        report.total_chunks = self.store.count()

    def _write(self, chunks: list[Chunk], papers_done: int = 0, counter: list[int] | None = None) -> int:
        vectors = self.embedder.get_text_embedding_batch([c.embedded for c in chunks])
        self.store.add(chunks, vectors)
        if counter is not None:
            counter[0] = papers_done
        return len(chunks)
