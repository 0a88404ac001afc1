"""Ingest end to end with the real model and a real embedded Chroma."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.chunk import chunk_paper, chunk_stamp
from ingest.dedup import dedup
from ingest.formats.hf_pages import read_hf_pages
from ingest.pipeline import Ingestor
from rag.embeddings import wordpiece_counter
from rag.lexical import LexicalIndex, fingerprint
from rag.settings import Settings
from rag.store import EmbeddingMismatchError, open_store

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "hf-papers"
pytestmark = pytest.mark.slow


def expected_chunk_ids(papers: list[Any], settings: Settings) -> set[str]:
    count = wordpiece_counter()
    cfg = settings.chunking
    return {n.id for p in papers for n in chunk_paper(p, cfg.max_tokens, count, cfg.prefix_title)}


def stored_ids(store: Any) -> list[str]:
    return [cid for page in store.pages(include_documents=False) for cid in page.ids]


def small_corpus(tmp_path: Path, n: int, name: str = "page.txt") -> Path:
    """The first ``n`` entries of a real page, as a page file of its own."""
    recs = read_hf_pages(BUNDLED / "000_1d103db93eae32e7.txt").records[:n]
    path = tmp_path / name
    path.write_text("\n".join(f"{r.title}\n{r.abstract}" for r in recs) + "\n")
    return path


def test_bundled_corpus_is_fully_indexed(bundled_index: Any) -> None:
    settings, store, report = bundled_index
    assert report.ok
    assert (report.records, report.seen, report.new, report.unchanged) == (965, 872, 872, 0)
    papers = dedup([r for f in sorted(BUNDLED.glob("*.txt")) for r in read_hf_pages(f).records])
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == report.total_chunks == report.chunks_written
    assert set(ids) == expected_chunk_ids(papers, settings)
    # BM25 describes exactly the same chunks as Chroma.
    lex = LexicalIndex.load(settings.bm25_path)
    assert lex.fingerprint == fingerprint(ids)
    assert sorted(lex.ids) == sorted(ids)
    # The collection says which model wrote it.
    assert store.collection.metadata["embed_model"] == "sentence-transformers/all-MiniLM-L6-v2"


def test_bm25_built_page_by_page_scores_exactly_like_bm25s_one_shot(bundled_index: Any, tmp_path: Path) -> None:
    """`rebuild_lexical` tokenizes Chroma's pages as they arrive (the texts are never all in memory); the index
    must equal bm25s's own pipeline (`bm25s.tokenize` over all texts, then `index`), score for score."""
    import bm25s
    import numpy as np
    import Stemmer

    from rag.chunks import embed_text
    from rag.lexical import tokenize_pages

    _, store, _ = bundled_index
    ids: list[str] = []
    texts: list[str] = []
    pages: list[tuple[list[str], list[str]]] = []
    for page in store.pages():
        metas = page.metadatas
        page_texts = [embed_text(str(m.get("title", "")), d) for d, m in zip(page.documents, metas, strict=True)]
        for lo in range(0, len(page.ids), 100):  # many pages: the vocabulary has to grow across them
            pages.append((page.ids[lo : lo + 100], page_texts[lo : lo + 100]))
        ids += page.ids
        texts += page_texts
    assert len(pages) > 10
    paged = LexicalIndex.build(tmp_path / "bm25", *tokenize_pages(pages))
    assert paged.ids == ids
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25()
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    vocab = set(paged._bm25.vocab_dict) - {""}
    assert vocab == set(reference.vocab_dict) - {""} and len(vocab) > 5000
    queries = [t[:80] for t in texts[::40]] + ["ClusterNS hard negatives", "speech pretraining without labels"]
    for q in queries:
        words = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
        words = [w for w in words if w in vocab]
        assert words, q
        np.testing.assert_allclose(paged._bm25.get_scores(words), reference.get_scores(words), rtol=1e-6)


def test_dense_and_lexical_find_the_clustering_paper(bundled_index: Any, embedder: Any) -> None:
    settings, store, _ = bundled_index
    q = "mining hard negatives with clustering for sentence embeddings"
    got = store.collection.query(query_embeddings=[embedder.get_query_embedding(q)], n_results=3)
    titles = [m["title"] for m in got["metadatas"][0]]
    assert titles[0] == "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
    lex = LexicalIndex.load(settings.bm25_path)
    assert lex.search("ClusterNS", k=3)[0][0].startswith("clustering-aware-negative-sampling")
    assert lex.search("zzzqqq unknownword", k=3) == []


def test_reingest_unchanged_writes_nothing(bundled_index: Any) -> None:
    settings, store, _ = bundled_index
    ingestor = Ingestor(settings, store)  # no embedder given: it must not even be loaded
    report = ingestor.ingest_paths([BUNDLED])
    assert (report.unchanged, report.new, report.updated, report.chunks_written) == (872, 0, 0, 0)
    assert not report.lexical_rebuilt
    assert ingestor._embedder is None


def test_changed_abstract_replaces_its_chunks(tmp_path: Path, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path / "idx")
    store = open_store(settings)
    page = small_corpus(tmp_path, 6)
    first = Ingestor(settings, store, embedder).ingest_paths([str(page)])  # plain strings work too (README example)
    assert first.new == 6
    lines = page.read_text().splitlines()
    lines[1] = lines[1] + " We also add a brand new sentence about quokkas."
    page.write_text("\n".join(lines) + "\n")
    second = Ingestor(settings, store, embedder).ingest_paths([page])
    assert (second.updated, second.unchanged, second.new) == (1, 5, 0)
    assert second.chunks_deleted > 0
    papers = dedup(read_hf_pages(page).records)
    assert sorted(stored_ids(store)) == sorted(expected_chunk_ids(papers, settings))
    assert LexicalIndex.load(settings.bm25_path).search("quokkas", k=1)[0][0].startswith(papers[0].paper_id)


def test_other_embedding_model_is_refused(tmp_path: Path, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path / "idx")
    Ingestor(settings, open_store(settings), embedder).ingest_paths([small_corpus(tmp_path, 2)])
    other = Settings(data_dir=tmp_path / "idx", embedding={"provider": "openai"})  # type: ignore[arg-type]
    expected = r"indexed with 'sentence-transformers/all-MiniLM-L6-v2' \(local\) \(dim 384\).*rag ingest --reindex"
    with pytest.raises(EmbeddingMismatchError, match=expected):
        open_store(other).count()


def test_user_jsonl_metadata_reaches_chroma(tmp_path: Path, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path / "idx")
    store = open_store(settings)
    rows = [
        {
            "title": "Sparse Quokka Attention",
            "abstract": "We study sparse attention in quokka transformers. " * 4,
            "year": 2021,
            "categories": ["cs.CL", "cs.LG"],
            "arxiv_id": "2101.00001",
            "authors": ["A. B", "C. D"],
        },
        {
            "title": "Dense Wombat Retrieval",
            "abstract": "We retrieve wombats with dense vectors and BM25. " * 4,
            "year": 2023,
            "categories": "cs.IR",
        },
    ]
    f = tmp_path / "mine.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = Ingestor(settings, store, embedder).ingest_paths([f])
    assert report.ok and report.new == 2
    got = store.collection.get(where={"year": {"$gte": 2022}}, include=["metadatas"])
    assert {m["title"] for m in got["metadatas"]} == {"Dense Wombat Retrieval"}
    meta = store.collection.get(where={"arxiv_id": "2101.00001"}, include=["metadatas"])["metadatas"][0]
    assert meta["categories"] == "cs.CL cs.LG" and meta["authors"] == "A. B, C. D"


def run_cli(
    args: list[str], data_dir: Path, extra_env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(extra_env or {}), "RAG_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
        **kw,
    )


def test_bad_input_is_reported_and_the_rest_ingests(tmp_path: Path) -> None:
    data = tmp_path / "idx"
    good = small_corpus(tmp_path, 3)
    assert run_cli(["ingest", "-q", str(good)], data).returncode == 0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.jsonl").write_text("")
    (bad / "blob.csv").write_bytes(b"\x00\x01\x02\xff" * 100)
    huge = "word " * 2_100_000
    ok_row = {"title": "A Fine Paper", "abstract": "This abstract is perfectly fine and long enough. " * 3}
    (bad / "mixed.jsonl").write_text(
        "\n".join(
            [
                json.dumps(ok_row),
                '{"title": "Truncated", "abstract": "cut off',
                json.dumps({"title": "No abstract here"}),
                json.dumps({"title": "Huge", "abstract": huge}),
            ]
        )
        + "\n"
    )
    res = run_cli(["ingest", "-q", str(bad)], data)
    assert res.returncode == 1, res.stderr
    assert "empty.jsonl" in res.stderr and "blob.csv" in res.stderr
    assert "mixed.jsonl:2" in res.stderr and "mixed.jsonl:3" in res.stderr and "mixed.jsonl:4" in res.stderr
    assert "new 1" in res.stdout
    status = json.loads(run_cli(["status"], data).stdout)
    assert status["papers"] == 4  # the 3 already indexed are still there, plus the good new one


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    res = run_cli(["ingest", str(tmp_path / "nope.jsonl")], tmp_path / "idx")
    assert res.returncode == 2
    assert "no such file or directory" in res.stderr


def test_ingest_killed_mid_batch_then_rerun_is_exact(tmp_path: Path, embedder: Any) -> None:
    data = tmp_path / "idx"
    page = small_corpus(tmp_path, 120)
    env = {**os.environ, "RAG_DATA_DIR": str(data), "RAG_STORE__WRITE_BATCH": "8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ingest", str(page)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        seen += os.read(proc.stderr.fileno(), 4096)
        done = [int(m) for m in re.findall(rb"(\d+)/\d+ \[", seen)]
        if done and max(done) >= 20:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done and 20 <= max(done) < 120, seen[-500:]
    settings = Settings(data_dir=data)
    store = open_store(settings)
    partial = len(stored_ids(store))
    assert partial > 0
    report = Ingestor(settings, store, embedder).ingest_paths([page])
    papers = dedup(read_hf_pages(page).records)
    ids = stored_ids(store)
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_chunk_ids(papers, settings)
    assert report.unchanged + report.new + report.repaired == 120 and report.unchanged > 0
    assert LexicalIndex.load(settings.bm25_path).fingerprint == fingerprint(ids)
    stamps = {p.paper_id: chunk_stamp(p, 256, True) for p in papers}
    assert all(cid.split("#")[1] == stamps[cid.split("#")[0]] for cid in ids)


def test_damaged_chroma_index_is_a_clear_error_and_rebuild_repairs_it(tmp_path: Path) -> None:
    """Chroma's HNSW files half-written (what a kill during its index flush leaves; seen at 10^6 papers): every
    command says so and how to recover instead of a raw Chroma trace, and `rag ingest --rebuild` recovers."""
    data = tmp_path / "idx"
    env = {"RAG_EMBEDDING__PROVIDER": "hash"}  # the vectors' origin does not matter here; 1,385 chunks do
    assert run_cli(["ingest", "-q", str(BUNDLED)], data, env).returncode == 0
    [hnsw] = [p for p in (data / "chroma").iterdir() if p.is_dir()]
    meta = hnsw / "index_metadata.pickle"
    assert meta.stat().st_size > 1000  # Chroma flushed its vector index (more than its 1,000-record threshold)
    os.truncate(meta, 100)  # a torn write
    res = run_cli(["ask", "What is ClusterNS?"], data, env)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "damaged" in res.stderr and "rag ingest --rebuild" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_cli(["ingest", "-q", "--rebuild", str(BUNDLED)], data, env)
    assert res.returncode == 0, res.stderr
    res = run_cli(["ask", "What is ClusterNS?"], data, env)
    assert res.returncode == 0 and "ClusterNS" in res.stdout, res.stderr


def test_ingest_imports_no_llama_index_or_torch(tmp_path: Path) -> None:
    """`rag ingest` pays only for what indexing needs: chunks are plain ``rag.chunks.Chunk``s written to Chroma
    directly, so neither llama-index (~2.5 s to import) nor torch is loaded (hash embedding: no model needed)."""
    papers = tmp_path / "papers.jsonl"
    rows = [{"id": f"p{i}", "title": f"Paper {i}", "abstract": f"We study topic {i}. It works well."} for i in range(3)]
    papers.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code = (
        "import sys; from app.cli import main; "
        f"rc = main(['ingest', {str(papers)!r}, '--json']); "
        "print(rc, sorted(m for m in ('llama_index', 'llama_index.core', 'torch', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "rag"), "RAG_EMBEDDING__PROVIDER": "hash"}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report, last = res.stdout.strip().rsplit("\n", 1)
    assert json.loads(report)["new"] == 3 and last == "0 []"
