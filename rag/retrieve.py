"""Hybrid retrieval: dense (Chroma) + BM25 (bm25s), fused by confidence (rag.fusion), folded into papers.

>>> retriever = Retriever.open(settings)          # or Retriever(store, LexicalIndex.load(path), embedder)
>>> [h.title for h in retriever.retrieve("hard negatives from clustering", k=3)]

Per query the cost is one query embedding, one Chroma kNN query, one BM25 lookup, one Chroma `get` of texts
(hybrid: the BM25 candidates', for phrase evidence, reused for the results; a second, small `get` only for
dense-only results) and, every `lexical_refresh` seconds, one metadata read (rag.lexical_sync); nothing is
O(corpus) except BM25's own scoring. Two optional LLM or model stages, off by default: a query rewriter
(rag.rewrite) first turns the question into the searches standing for it (HyDE: one search whose dense side adds a
hypothetical abstract's vector; multi-query: the question and its rephrasings, each searched as above and fused by
reciprocal rank), and a reranker (rag.rerank) then re-orders the top ``rerank_top_n`` papers; ``search`` returns
their notes (a stage that failed, so the question alone, or the fused order, stands).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from rag.chunks import ChunkId
from rag.fusion import Hit, fold_to_papers, fuse_rrf, fuse_zscore, lexical_gate, phrase_boost, phrase_pairs
from rag.lexical import LexicalIndex
from rag.lexical_sync import LexicalView
from rag.protocols import Embedder, Reranker, Rewriter
from rag.question import mentions, specific_terms
from rag.settings import Settings
from rag.store import ChunkStore
from rag.types import Mode, Paper, Probe

__all__ = ["Filters", "PaperHit", "Retrieval", "Retriever"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Filters:
    """Metadata filters, mapped onto a Chroma ``where``. Categories match if the paper has any of them."""

    year_min: int | None = None
    year_max: int | None = None
    categories: tuple[str, ...] = ()

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.year_min is not None:
            clauses.append({"year": {"$gte": self.year_min}})
        if self.year_max is not None:
            clauses.append({"year": {"$lte": self.year_max}})
        if self.categories:
            cats = [{f"cat:{c}": 1} for c in self.categories]
            clauses.append(cats[0] if len(cats) == 1 else {"$or": cats})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class PaperHit:
    """One retrieved paper: its best-matching chunk is kept as evidence."""

    paper_id: str
    title: str
    score: float
    best_chunk: str
    chunk_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    dense_score: float | None = None  # cosine similarity of the paper's best dense chunk, when dense ran
    n_chunks: int = 1  # chunks of this paper (their ids are chunk_id's prefix + 0..n_chunks-1)
    rerank_score: float | None = None  # the rerank stage's score, when it ran on this paper


@dataclass(frozen=True)
class Retrieval:
    """What ``Retriever.search`` found: the papers, best first, and notes for the user (a rewrite or rerank stage
    that failed and fell back); ``rewrite_ms`` and ``rerank_ms`` are the stages' times when they ran."""

    hits: list[PaperHit]
    notes: tuple[str, ...] = ()
    rerank_ms: float | None = None
    rewrite_ms: float | None = None


class _Ranked(NamedTuple):
    """One search's fused chunk ranking, its dense hits and the chunk texts fetched on the way."""

    fused: list[Hit]
    dense: list[Hit]
    fetched: dict[str, tuple[str, dict[str, Any]]]


class Retriever:
    """Ranked papers for a query. Clients are passed in; ``open`` builds them from settings."""

    def __init__(
        self,
        store: ChunkStore,
        lexical: LexicalIndex | LexicalView | None,
        embedder: Embedder,
        candidates: int = 50,
        *,
        reranker: Reranker | None = None,
        rerank_top_n: int = 20,
        rewriter: Rewriter | None = None,
    ) -> None:
        if candidates <= 0:
            raise ValueError("candidates must be positive")
        if rerank_top_n <= 0:
            raise ValueError("rerank_top_n must be positive")
        self.store = store
        self.lexical = lexical
        self.embedder = embedder
        self.candidates = candidates
        self.reranker = reranker
        self.rerank_top_n = rerank_top_n
        self.rewriter = rewriter
        self._vectors: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        settings: Settings,
        store: ChunkStore | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        rewriter: Rewriter | None = None,
    ) -> Retriever:
        """``reranker``, ``rewriter``: the optional stages (rag.rerank.build_reranker, rag.rewrite.build_rewriter;
        the Assistant builds them, as they need the LLM)."""
        from rag.embeddings import build_embedder
        from rag.store import open_store

        store = store or open_store(settings)
        lexical = LexicalView.open(store, settings.bm25_path, settings.retrieval.lexical_refresh)
        embedder = embedder or build_embedder(settings.embedding, settings.models_dir)
        return cls(
            store,
            lexical,
            embedder,
            settings.retrieval.candidates,
            reranker=reranker,
            rerank_top_n=settings.rerank.top_n,
            rewriter=rewriter,
        )

    @property
    def lexical_index(self) -> LexicalIndex | None:
        """The BM25 index serving this query (refreshed first if another process changed the collection)."""
        return self.lexical.current() if isinstance(self.lexical, LexicalView) else self.lexical

    def query_vector(self, query: str) -> list[float]:
        """The query's embedding; the last few are kept, so the answerability check reuses retrieval's vector."""
        with self._lock:
            vec = self._vectors.get(query)
        if vec is None:
            vec = self.embedder.get_query_embedding(query)
            with self._lock:  # the UI answers several sessions at once
                if len(self._vectors) >= 8:
                    self._vectors.pop(next(iter(self._vectors)))
                self._vectors[query] = vec
        return vec

    def probe_vector(self, probe: Probe) -> list[float]:
        """The dense side's vector for a search: the query's, or (HyDE) the normalised mean of the query's and the
        hypothetical passage's, embedded as the document it pretends to be."""
        vec = self.query_vector(probe.query)
        if not probe.passage:
            return vec
        doc = self.embedder.get_text_embedding_batch([probe.passage])[0]
        total = [a + b for a, b in zip(vec, doc, strict=True)]
        norm = math.sqrt(sum(x * x for x in total)) or 1.0
        return [x / norm for x in total]

    def dense(
        self, query: str, n: int, where: dict[str, Any] | None = None, vector: list[float] | None = None
    ) -> list[Hit]:
        vec = vector if vector is not None else self.query_vector(query)
        got = self.store.query(query_embeddings=[vec], n_results=n, where=where, include=["metadatas", "distances"])
        # Cosine space: similarity = 1 - distance.
        return [
            Hit(cid, str(meta["paper_id"]), 1.0 - float(dist))
            for cid, meta, dist in zip(got["ids"][0], got["metadatas"][0], got["distances"][0], strict=True)
        ]

    def bm25(self, query: str, n: int, where: dict[str, Any] | None = None) -> list[Hit]:
        return self._lexical(query, n, where, texts=False)[0]

    def _lexical(
        self, query: str, n: int, where: dict[str, Any] | None, texts: bool
    ) -> tuple[list[Hit], dict[str, tuple[str, dict[str, Any]]]]:
        """BM25 hits, filtered like the dense side, and (``texts``) their texts and metadata: one Chroma call."""
        index = self.lexical_index
        if index is None:
            return [], {}
        # chunk ids are "paper_id#stamp#index": a "#" inside the paper id stays with it.
        hits = [Hit(cid, ChunkId.parse(cid).paper_id, score) for cid, score in index.search(query, k=n)]
        fetched: dict[str, tuple[str, dict[str, Any]]] = {}
        if hits and (where is not None or texts):
            # With a filter, Chroma applies it to the BM25 candidates, so both sides filter identically.
            include = ["documents", "metadatas"] if texts else []
            got = self.store.get(ids=[h.chunk_id for h in hits], where=where, include=include)
            keep = set(got["ids"])
            if texts:
                fetched = _as_fetched(got)
            if where is not None:
                hits = [h for h in hits if h.chunk_id in keep]
        return hits, fetched

    def retrieve(
        self, query: str, k: int = 10, mode: Mode | str = Mode.HYBRID, filters: Filters | None = None
    ) -> list[PaperHit]:
        """The ``k`` best papers for ``query``, best first, each with its best chunk."""
        return self.search(query, k, mode, filters).hits

    def search(
        self, query: str, k: int = 10, mode: Mode | str = Mode.HYBRID, filters: Filters | None = None
    ) -> Retrieval:
        """``retrieve`` with its notes: the ``k`` best papers after fusion and, when a reranker is set, after it
        re-ordered the top ``rerank_top_n`` (a failing reranker leaves the fused order and a note). With a
        rewriter, the searches it returns are run and their rankings fused by reciprocal rank (a failing rewriter
        leaves the question alone and a note)."""
        if not query.strip():
            raise ValueError("empty query")
        if k <= 0:
            raise ValueError("k must be positive")
        mode = Mode.parse(mode)
        where = filters.where() if filters else None
        n = max(self.candidates, 3 * k)
        probes, notes, rewrite_ms = self._rewrite(query)
        runs = [self._ranked(probe, n, where, mode) for probe in probes]
        fused = runs[0].fused if len(runs) == 1 else fuse_rrf([run.fused for run in runs])
        fetched: dict[str, tuple[str, dict[str, Any]]] = {}  # chunk id -> (text, metadata), fetched once per query
        for run in runs:
            fetched.update(run.fetched)
        # dense_score feeds the refusal (retrieval.min_similarity), chosen on the question's own similarity: a
        # rewrite changes the ranking, not what counts as off-topic. HyDE has no plain search of the question.
        plain = next((run.dense for probe, run in zip(probes, runs, strict=True) if probe == Probe(query)), None)
        if plain is None:
            plain = self.dense(query, n, where) if mode != "bm25" else []
        dense_best: dict[str, float] = {}
        for h in plain:  # best-first, so the first hit of a paper is its best
            dense_best.setdefault(h.paper_id, h.score)
        depth = max(k, self.rerank_top_n) if self.reranker is not None else k
        papers = fold_to_papers(fused)[: depth + 5]  # a few spare: a hit on a just-deleted chunk is dropped
        missing = [h.chunk_id for h in papers if h.chunk_id not in fetched]
        fetched.update(self._fetch(missing))
        hits = self._hydrate(papers, dense_best, fetched)
        if self.reranker is None:
            return Retrieval(hits[:k], notes, rewrite_ms=rewrite_ms)
        reranked = self._rerank(query, hits, k)
        return replace(reranked, notes=notes + reranked.notes, rewrite_ms=rewrite_ms)

    def _rewrite(self, query: str) -> tuple[list[Probe], tuple[str, ...], float | None]:
        """The searches standing for ``query`` (just the question without a rewriter), notes, the stage's time."""
        if self.rewriter is None:
            return [Probe(query)], (), None
        from rag.rewrite import rewrite

        t0 = time.perf_counter()
        probes, note = rewrite(self.rewriter, query)
        if note:
            log.warning("%s", note)  # callers of plain `retrieve` (HTTP search, MCP) get the plain ranking silently
        return probes, (note,) if note else (), (time.perf_counter() - t0) * 1000

    def _ranked(self, probe: Probe, n: int, where: dict[str, Any] | None, mode: Mode) -> _Ranked:
        """One search's fused ranking: dense on the probe's vector, BM25 on its text, fused as ``mode`` says."""
        text = probe.bm25_text
        dense = self.dense(probe.query, n, where, self.probe_vector(probe)) if mode != "bm25" else []
        phrases = mode == "hybrid" and bool(phrase_pairs(text))
        lexical, fetched = self._lexical(text, n, where, texts=phrases) if mode != "dense" else ([], {})
        if mode == "dense":
            fused = dense
        elif mode == "bm25":
            fused = lexical
        elif mode == "rrf":
            fused = fuse_rrf([dense, lexical])
        else:  # BM25 weighed by how much of the query it matched, its hits boosted by phrase evidence (rag.fusion)
            gate = self._lexical_gate(text, lexical, fetched)
            if lexical and phrases:
                fields = {cid: (str(meta.get("title", "")), doc) for cid, (doc, meta) in fetched.items()}
                lexical = phrase_boost(text, lexical, fields)
            fused = fuse_zscore(dense, lexical, lexical_weight=gate, depth=n)
        return _Ranked(fused, dense, fetched)

    def _rerank(self, query: str, hits: list[PaperHit], k: int) -> Retrieval:
        from rag.rerank import rerank

        assert self.reranker is not None
        t0 = time.perf_counter()
        ordered, scores, note = rerank(
            self.reranker, query, hits, self.rerank_top_n, lambda h: f"{h.title}\n{h.best_chunk}"
        )
        if scores is not None:
            head = [replace(h, rerank_score=s) for h, s in zip(ordered, scores, strict=False)]
            ordered = head + ordered[len(head) :]
        ms = (time.perf_counter() - t0) * 1000
        if note:
            log.warning("%s", note)  # callers of plain `retrieve` (HTTP search, MCP) get the fused ranking silently
        return Retrieval(ordered[:k], (note,) if note else (), ms)

    def _lexical_gate(self, query: str, lexical: list[Hit], fetched: dict[str, tuple[str, dict[str, Any]]]) -> float:
        """The BM25 side's weight for this query (rag.fusion.lexical_gate); full when the top BM25 chunk contains
        a name the query uses ("SimCSE", "CASP14"): a name is the paper's own wording by definition (dev split:
        +0.012 nDCG@10 on own-words questions with some vocabulary, no change elsewhere)."""
        index = self.lexical_index
        if index is None or not lexical:
            return 0.0
        top = fetched.get(lexical[0].chunk_id)
        if top is not None and any(mentions(top[0], name) for name in specific_terms(query)):
            return 1.0
        attainable = index.attainable(query)
        return lexical_gate(lexical[0].score / attainable) if attainable > 0 else 0.0

    def _fetch(self, chunk_ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        if not chunk_ids:
            return {}
        return _as_fetched(self.store.get(ids=chunk_ids, include=["documents", "metadatas"]))

    def abstracts(self, hits: list[PaperHit]) -> dict[str, str]:
        """Full abstracts of these papers, reassembled from their chunks: one Chroma `get` by chunk id (a
        `where paper_id in ...` filter would scan the metadata: 19 ms at 10^5 papers and linear)."""
        ids = [ChunkId.parse(h.chunk_id).sibling(i).format() for h in hits for i in range(max(1, h.n_chunks))]
        if not ids:
            return {}
        got = self.store.get(ids=ids, include=["documents", "metadatas"])
        parts: dict[str, list[tuple[int, str]]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"], strict=True):
            parts.setdefault(str(meta["paper_id"]), []).append((int(meta.get("chunk", 0)), doc or ""))
        return {pid: " ".join(text for _, text in sorted(chunks)) for pid, chunks in parts.items()}

    def paper(self, paper_id: str) -> Paper | None:
        """One indexed paper by id (its abstract reassembled from its chunks), or None if it is not indexed."""
        got = self.store.get(where={"paper_id": paper_id}, include=["documents", "metadatas"])
        chunks = sorted(
            (
                (int(meta.get("chunk", 0)), doc or "", meta)
                for doc, meta in zip(got["documents"], got["metadatas"], strict=True)
            ),
            key=lambda c: c[0],
        )
        if not chunks:
            return None
        return Paper.from_metadata(dict(chunks[0][2]), " ".join(text for _, text, _ in chunks))

    def _hydrate(
        self, hits: list[Hit], dense_best: dict[str, float], by_id: dict[str, tuple[str, dict[str, Any]]]
    ) -> list[PaperHit]:
        out: list[PaperHit] = []
        for h in hits:
            if h.chunk_id not in by_id:
                continue  # a BM25 hit on a chunk another process deleted since the index was built
            doc, raw = by_id[h.chunk_id]
            meta = {k: v for k, v in dict(raw or {}).items() if k not in _STORAGE_KEYS}
            title = str(meta.get("title", ""))
            n_chunks = int((raw or {}).get("n_chunks", 1) or 1)
            out.append(
                PaperHit(h.paper_id, title, h.score, doc or "", h.chunk_id, meta, dense_best.get(h.paper_id), n_chunks)
            )
        return out


# Stored with every chunk for the ingest's bookkeeping; not paper metadata.
_STORAGE_KEYS = frozenset({"stamp", "chunk", "n_chunks", "content_hash"})


def _as_fetched(got: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        cid: (doc or "", dict(meta or {}))
        for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
    }
