"""Hybrid retrieval: pure fusion rules, the retriever's plumbing on the fake index, then retrieval quality on the
real index (bundled corpus, real model, real Chroma; slow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.dedup import dedup
from ingest.formats import read_paths
from ingest.pipeline import Ingestor
from rag.fusion import Hit, fold_to_papers, fuse_rrf, fuse_zscore
from rag.llama_adapters import HybridRetriever
from rag.retrieve import Filters, Retriever
from rag.settings import Settings
from rag.store import open_store
from tests.conftest import BUNDLED, FakeIndex
from tests.fakes import FakeEmbedding

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(c, c.split("#")[0], s) for c, s in pairs]


def test_rrf_rewards_agreement() -> None:
    fused = fuse_rrf([hits(("a#0", 0.9), ("b#0", 0.8)), hits(("b#0", 9.0), ("c#0", 1.0))])
    assert [h.chunk_id for h in fused] == ["b#0", "a#0", "c#0"]


def test_sure_lexical_side_wins_over_dense() -> None:
    dense = hits(("a#0", 0.62), ("b#0", 0.61), ("c#0", 0.60), ("d#0", 0.59), ("e#0", 0.58))
    lexical = hits(("c#0", 30.0), ("a#0", 3.0), ("b#0", 2.9), ("d#0", 2.8), ("e#0", 2.7))
    assert fuse_zscore(dense, lexical)[0].chunk_id == "c#0"


def test_flat_lexical_side_does_not_reorder_a_sure_dense_side() -> None:
    dense = hits(("a#0", 0.80), ("b#0", 0.40), ("c#0", 0.39), ("d#0", 0.38), ("e#0", 0.37))
    lexical = hits(("e#0", 5.1), ("d#0", 5.0), ("c#0", 5.0), ("b#0", 4.9), ("a#0", 4.9))
    assert fuse_zscore(dense, lexical)[0].chunk_id == "a#0"


def test_fold_keeps_one_entry_per_paper_with_its_best_chunk() -> None:
    folded = fold_to_papers(hits(("p#s#1", 0.9), ("q#s#0", 0.8), ("p#s#0", 0.5)))
    assert [(h.paper_id, h.chunk_id) for h in folded] == [("p", "p#s#1"), ("q", "q#s#0")]


@pytest.fixture(scope="module")
def retriever(bundled_index: Any, embedder: Any) -> Retriever:
    settings, store, _ = bundled_index
    return Retriever.open(settings, store, embedder)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "rank"), [("hybrid", 1), ("dense", 1), ("bm25", 3), ("rrf", 3)])
def test_clusterns_question_finds_the_paper(retriever: Retriever, mode: Any, rank: int) -> None:
    got = retriever.retrieve("Which methods mine hard negatives with clustering for sentence embeddings?", 5, mode)
    # BM25 alone ranks "NV-Retriever ... hard-negative mining" first (it shares more of the words).
    assert CLUSTER_NS in [h.title for h in got[:rank]]
    assert len({h.paper_id for h in got}) == len(got) == 5
    assert got[0].best_chunk and got[0].metadata["paper_id"] == got[0].paper_id


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "title_start"), [("ClusterNS", "Clustering-Aware Negative"), ("SciBERT", "SciBERT:")]
)
def test_exact_name_lookup(retriever: Retriever, query: str, title_start: str) -> None:
    assert retriever.retrieve(query, 3)[0].title.startswith(title_start)


@pytest.mark.slow
@pytest.mark.parametrize(("query", "k", "error"), [("  ", 5, "empty query"), ("x", 0, "k must be positive")])
def test_bad_queries(retriever: Retriever, query: str, k: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        retriever.retrieve(query, k)


@pytest.mark.slow
def test_unknown_mode(retriever: Retriever) -> None:
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        retriever.retrieve("x", 3, "magic")  # type: ignore[arg-type]


@pytest.mark.slow
def test_llama_index_retriever_wrapper(retriever: Retriever) -> None:
    nodes = HybridRetriever(retriever, k=3).retrieve("clustering hard negatives sentence embeddings")
    assert nodes[0].node.metadata["title"] == CLUSTER_NS
    assert nodes[0].score is not None


@pytest.mark.slow
def test_hybrid_is_as_good_as_the_better_side_on_both_question_kinds(retriever: Retriever) -> None:
    """The fusion claim, measured with ranx on the dev sets: on each kind of question hybrid is within 0.05 nDCG@10
    of the better single side (naive RRF is not: it loses ~0.25 on wording-reuse questions here), and meets the
    issue-3 targets: >= 0.99 on wording-reuse questions (phrase evidence; 0.93 without), >= 0.70 on own words."""
    from ranx import Qrels, Run, evaluate

    from evals.synthetic import wording_reuse_questions

    papers = dedup(read_paths([ROOT / "data" / "hf-papers"])[0].records)
    ids = [p.paper_id for p in papers]
    own_words = []
    for line in (ROOT / "evals" / "datasets" / "dev_paraphrase.jsonl").read_text().splitlines():
        row = json.loads(line)
        (gold,) = [i for i in ids if i.startswith(row["gold_prefix"][0])]
        own_words.append((row["id"], row["question"], gold))
    wording = [(q.qid, q.text, q.gold[0]) for q in wording_reuse_questions(papers, 60)]
    for questions, target in ((wording, 0.99), (own_words, 0.70)):
        qrels = Qrels({qid: {gold: 1} for qid, _, gold in questions})
        score = {}
        for mode in ("dense", "bm25", "hybrid"):
            run = Run({qid: {h.paper_id: h.score for h in retriever.retrieve(q, 10, mode)} for qid, q, _ in questions})
            score[mode] = float(evaluate(qrels, run, "ndcg@10"))
        assert score["hybrid"] >= max(score["dense"], score["bm25"]) - 0.05, score
        assert score["hybrid"] >= target, score


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fragment", "title_start"),
    [  # generic fragments of abstracts: BM25 alone ranks these papers 9th and 5th, the old fusion 18th and 13th
        ("these observations into a set of objectives and train an", "Learning to generate line drawings"),
        ("that our model outperforms the state-of-the-art baselines on 7 out", "Zero-Shot Text Classification"),
    ],
)
def test_quoted_fragment_finds_its_paper(retriever: Retriever, fragment: str, title_start: str) -> None:
    assert retriever.retrieve(fragment, 3)[0].title.lower().startswith(title_start.lower())


@pytest.mark.slow
def test_filters_apply_to_both_sides(tmp_path: Path, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path / "idx")
    store = open_store(settings)
    rows = [
        {
            "title": f"Quokka attention {y}",
            "abstract": f"Sparse quokka attention for transformers, edition {y}. " * 3,
            "year": y,
            "categories": cats,
        }
        for y, cats in [(2019, ["cs.CL"]), (2021, ["cs.LG"]), (2023, ["cs.CL", "cs.LG"])]
    ]
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    Ingestor(settings, store, embedder).ingest_paths([f])
    r = Retriever.open(settings, store, embedder)
    for mode in ("dense", "bm25", "hybrid"):
        got = r.retrieve("quokka attention", 5, mode, Filters(year_min=2020))  # type: ignore[arg-type]
        assert {h.metadata["year"] for h in got} == {2021, 2023}, mode
        got = r.retrieve("quokka attention", 5, mode, Filters(categories=("cs.CL",)))  # type: ignore[arg-type]
        assert {h.metadata["year"] for h in got} == {2019, 2023}, mode
        got = r.retrieve("quokka", 5, mode, Filters(year_max=2020, categories=("cs.LG",)))  # type: ignore[arg-type]
        assert got == [], mode
    # Filtered hybrid: the filter check and the phrase evidence share one Chroma read of the BM25 candidates;
    # the hits' texts come from it too (no read of their own).
    gets: list[dict[str, Any]] = []
    real_get = store.get

    def counting_get(**kwargs: Any) -> Any:
        gets.append(kwargs)
        return real_get(**kwargs)

    store.get = counting_get  # type: ignore[method-assign]
    got = r.retrieve("quokka attention", 5, "hybrid", Filters(year_min=2020))
    assert {h.metadata["year"] for h in got} == {2021, 2023}
    assert len(gets) == 1 and gets[0]["where"] is not None, gets


def test_lexical_view_reads_the_published_fingerprint_at_most_once_per_refresh(fake_index: FakeIndex) -> None:
    """Per query the BM25 freshness check is one metadata read every `lexical_refresh` seconds, not one per query;
    an unchanged collection never triggers a rebuild."""
    from rag.lexical import LexicalIndex
    from rag.lexical_sync import LexicalView

    settings, store = fake_index.settings, fake_index.store
    index = LexicalIndex.load(settings.bm25_path)
    assert store.published_fingerprint() == index.fingerprint  # published by the session's ingest
    now = [0.0]
    reads: list[float] = []

    class CountingStore:  # the real store, with its metadata reads counted
        def published_fingerprint(self) -> str | None:
            reads.append(now[0])
            return str(store.published_fingerprint())

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    view = LexicalView(CountingStore(), settings.bm25_path, refresh=10.0, index=index, clock=lambda: now[0])  # type: ignore[arg-type]
    for t in (0.0, 1.0, 9.9, 10.0, 15.0, 25.0):
        now[0] = t
        assert view.current() is index  # same object: nothing was reloaded or rebuilt
    assert reads == [0.0, 10.0, 25.0]


def test_abstracts_are_reassembled_whole_from_chunk_ids(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    papers = {p.paper_id: p for p in dedup(read_paths([BUNDLED])[0].records)}
    retriever = Retriever.open(fake_index.settings, fake_index.store, fake_embedder)
    hits = retriever.retrieve("contrastive sentence embeddings with hard negatives from clustering", k=10)
    assert any(h.n_chunks > 1 for h in hits)  # multi-chunk papers are among them
    abstracts = retriever.abstracts(hits)
    assert set(abstracts) == {h.paper_id for h in hits}
    for h in hits:
        assert " ".join(abstracts[h.paper_id].split()) == " ".join(papers[h.paper_id].abstract.split())
