"""BEIR datasets: the loader (CRLF, malformed lines, BEIR qrels semantics), ranx against trec_eval, and an
end-to-end ``--beir`` run on tests/fixtures/beir_tiny (40 real abstracts, 13 claim queries, graded qrels)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from evals.beir import BEIR_METRICS, beir_collection, load_beir
from evals.data import DatasetError
from evals.metrics import ranx_scores
from rag.protocols import Embedder

FIXTURE = Path(__file__).parent / "fixtures" / "beir_tiny"
QRELS_HEADER = "query-id\tcorpus-id\tscore"


def _write(root: Path, corpus: list[object], queries: list[object], qrels: str, newline: str = "\n") -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)

    def lines(rows: list[object]) -> str:
        return "".join((r if isinstance(r, str) else json.dumps(r)) + newline for r in rows)

    (root / "corpus.jsonl").write_bytes(lines(corpus).encode())
    (root / "queries.jsonl").write_bytes(lines(queries).encode())
    (root / "qrels" / "test.tsv").write_bytes(qrels.replace("\n", newline).encode())
    return root


DOCS: list[object] = [
    {"_id": "d1", "title": "SimCSE", "text": "Dropout noise as minimal augmentation for sentence embeddings."},
    {"_id": 2, "title": "", "text": "An integer id, as some exports write it; and an empty title."},
    {"_id": "d3", "title": "Other", "text": "Something unrelated about reinforcement learning."},
]
QUERIES: list[object] = [{"_id": "q1", "text": "dropout sentence embeddings"}, {"_id": "q2", "text": "integer ids"}]


# --- loader ------------------------------------------------------------------------------------------------------


def test_fixture_loads_with_crlf_qrels_and_beir_semantics() -> None:
    raw = (FIXTURE / "qrels" / "test.tsv").read_bytes()
    assert b"\r\n" in raw  # the fixture's qrels file really has CRLF line endings
    ds = load_beir(FIXTURE)
    assert ds.name == "beir_tiny" and ds.split == "test"
    assert len(ds.corpus) == 40 and len(ds.scored_queries) == 13
    assert "q14" in ds.queries and "q14" not in ds.qrels  # judged only in the dev split: not scored on test
    assert all(not k.endswith("\r") and all(not d.endswith("\r") for d in v) for k, v in ds.qrels.items())
    # the score-0 judgment is kept as judged non-relevant, not as relevant
    zero = [(q, d) for q, docs in ds.qrels.items() for d, s in docs.items() if s == 0]
    assert len(zero) == 1 and zero[0][1] not in ds.relevant[zero[0][0]]
    assert load_beir(FIXTURE, split="dev").scored_queries == ["q14"]


def test_loader_tolerates_crlf_everywhere_and_integer_ids(tmp_path: Path) -> None:
    root = _write(tmp_path, DOCS, QUERIES, f"{QRELS_HEADER}\nq1\td1\t2\nq1\td3\t0\nq2\t2\t1\n", newline="\r\n")
    ds = load_beir(root)
    assert set(ds.corpus) == {"d1", "2", "d3"}  # an integer _id becomes the string the qrels use
    assert ds.corpus["2"] == ("", "An integer id, as some exports write it; and an empty title.")
    assert ds.qrels == {"q1": {"d1": 2, "d3": 0}, "q2": {"2": 1}}
    assert ds.relevant == {"q1": {"d1"}, "q2": {"2"}}


@pytest.mark.parametrize(
    ("corpus", "queries", "qrels", "where", "why"),
    [
        ([*DOCS[:1], '{"_id": "d2", "text": "cut off'], QUERIES, "", "corpus.jsonl:2", "not JSON"),
        ([*DOCS, {"title": "no id", "text": "x"}], QUERIES, "", "corpus.jsonl:4", "missing '_id'"),
        ([*DOCS, DOCS[0]], QUERIES, "", "corpus.jsonl:4", "duplicate '_id' 'd1'"),
        ([*DOCS, {"_id": "a#b", "text": "x"}], QUERIES, "", "corpus.jsonl:4", "contains '#'"),
        ([*DOCS, {"_id": "d9", "text": None}], QUERIES, "", "corpus.jsonl:4", "'text' must be a string"),
        (DOCS, [*QUERIES, {"_id": "q3"}], "", "queries.jsonl:3", "has no 'text'"),
        (DOCS, [*QUERIES, ["not", "an", "object"]], "", "queries.jsonl:3", "expected a JSON object"),
        (DOCS, QUERIES, f"{QRELS_HEADER}\nq1\td1\n", "test.tsv:2", "expected 3 tab-separated fields"),
        (DOCS, QUERIES, f"{QRELS_HEADER}\nq1\td1\t1.5\n", "test.tsv:2", "score must be an integer"),
        (DOCS, QUERIES, f"{QRELS_HEADER}\nq1\td1\t1\nq9\td1\t1\n", "test.tsv:3", "query-id 'q9' is not in"),
        (DOCS, QUERIES, f"{QRELS_HEADER}\nq1\tnope\t1\n", "test.tsv:2", "corpus-id 'nope' is not in"),
        (DOCS, QUERIES, f"{QRELS_HEADER}\nq1\td1\t1\nq1\td1\t0\n", "test.tsv:3", "duplicate judgment"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, corpus: list[object], queries: list[object], qrels: str, where: str, why: str
) -> None:
    root = _write(tmp_path, corpus, queries, qrels or f"{QRELS_HEADER}\nq1\td1\t1\n", newline="\r\n")
    with pytest.raises(DatasetError) as err:
        load_beir(root)
    assert where in str(err.value) and why in str(err.value)


def test_missing_files_and_empty_qrels(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a directory"):
        load_beir(tmp_path / "nope")
    root = _write(tmp_path, DOCS, QUERIES, f"{QRELS_HEADER}\n")
    with pytest.raises(DatasetError, match="no judgments"):
        load_beir(root)
    with pytest.raises(DatasetError, match=r"qrels/dev\.tsv: missing"):
        load_beir(root, split="dev")


def test_collection_names_are_valid_chroma_names() -> None:
    from rag.settings import StoreSettings

    for name in ("scifact", "beir_tiny", "CQADupStack/android", "x", "a" * 100, "---"):
        coll = beir_collection(name)
        StoreSettings(collection=coll)  # 3-63 characters
        assert coll.startswith("beir-") and coll[-1].isalnum() and coll != "papers"


# --- metrics against trec_eval -------------------------------------------------------------------------------------


@pytest.mark.slow  # ranx JIT-compiles its numba kernels in every process: ~15 s
def test_ranx_matches_trec_eval_with_ties_duplicates_and_graded_qrels() -> None:
    """Expected values were produced once by trec_eval itself (pytrec-eval-terrier 0.5.11: ``ndcg_cut.10``,
    ``recall.10``, ``recall.100``, and ``recip_rank`` on the run cut at 10) from the same rankings written as a
    trec run with score 1/rank, the first occurrence of a duplicate kept. Raw tied scores are NOT what we feed:
    trec_eval breaks ties by docno (descending), so for q2 below, all three documents tied at 1.0, it would rank
    d9x, d8, d7 and give RR 1/3; the system's own order (d7 first) is what the user saw, and what is scored."""
    qrels = {
        "q1": {"d1": 2, "d2": 1, "d3": 0},  # graded, with a judged non-relevant document
        "q2": {"d7": 1},
        "q3": {"d9": 0},  # no relevant document at all: 0 everywhere (trec_eval includes it)
        "q4": {"d1": 1},  # never ranked: 0 (trec_eval -c semantics)
        "q5": {"r": 1, "s": 3},  # a hit only below rank 10
    }
    rankings = {
        "q1": ["d5", "d2", "d2", "d1", "d3", "d4"],  # d2 twice: counts once, at rank 2
        "q2": ["d7", "d8", "d9x"],  # scores tied in the system: its order is kept
        "q3": ["d9", "d1"],
        "q5": [f"x{i}" for i in range(1, 12)] + ["r"],
    }
    trec_eval = {
        "q1": {"ndcg@10": 0.6199062332840657, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 0.5},
        "q2": {"ndcg@10": 1.0, "recall@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0},
        "q3": {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0},
        "q4": {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0},
        "q5": {"ndcg@10": 0.0, "recall@10": 0.0, "recall@100": 0.5, "mrr@10": 0.0},
    }
    ours = ranx_scores(qrels, rankings, BEIR_METRICS)
    assert set(ours) == set(trec_eval)
    for q, expected in trec_eval.items():
        for metric, value in expected.items():
            assert ours[q][metric] == pytest.approx(value, abs=1e-9), (q, metric)
    # nDCG gain is the grade (trec_eval/Jarvelin), not 2**grade - 1: after dedup d2 (grade 1) is at rank 2 and
    # d1 (grade 2) at rank 3
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    assert ours["q1"]["ndcg@10"] == pytest.approx(dcg / (2 + 1 / math.log2(3)))


# --- end to end --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_beir_run_end_to_end_leaves_the_bundled_collection_alone(
    bundled_index: tuple[Any, Any, Any], embedder: Embedder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--beir`` pointed at the bundled index's own data dir: the fixture goes into collection beir-beir-tiny,
    the bundled ``papers`` collection and its BM25 index stay exactly as they were."""
    from evals.run import main
    from rag.lexical import LexicalIndex

    settings, store, _ = bundled_index
    before_ids = sorted(i for page in store.pages(include_documents=False) for i in page.ids)
    before_bm25 = LexicalIndex.stored_fingerprint(settings.bm25_path)
    out = tmp_path / "beir-out"
    data_dir = settings.data_dir
    try:
        code = main(["--beir", str(FIXTURE), "--out", str(out), "--data-dir", str(data_dir)], embedder=embedder)
        assert code == 0
        printed = capsys.readouterr().out
        assert "| hybrid |" in printed and "13 queries, 40 documents" in printed
        data = json.loads((out / "results.json").read_text())
        assert data["kind"] == "beir" and data["index"]["collection"] == "beir-beir-tiny"
        assert data["index"]["papers"] == 40 and data["unindexed_relevant"] == 0
        assert data["n_queries"] == 13 and {r["id"] for r in data["rows"]} == {f"q{i}" for i in range(1, 14)}
        summary = data["summary"]
        assert set(summary) == {"bm25", "dense", "hybrid"}
        for mode, vals in summary.items():
            assert set(vals) == set(BEIR_METRICS)
            # 13 claims written from these abstracts, 40 documents: every mode finds nearly all of them
            assert vals["ndcg@10"] >= 0.8, (mode, vals)
            assert vals["mrr@10"] >= 0.8, (mode, vals)
            assert vals["recall@100"] == 1.0, (mode, vals)
            assert vals["ndcg@10"] <= 1.0
        # a query's retrieved list holds corpus ids (the BEIR _id became the paper_id), best first
        q2 = next(r for r in data["rows"] if r["id"] == "q2" and r["mode"] == "hybrid")
        assert q2["retrieved"][0] == q2["relevant"][0] == "40000"
        assert "| mode | ndcg@10 |" in (out / "report.md").read_text()
    finally:
        from evals.beir import beir_settings
        from rag.store import open_store

        beir = beir_settings(data_dir, "beir_tiny", settings)
        open_store(beir).drop()  # leave the shared session index dir as it was
        shutil.rmtree(beir.bm25_path, ignore_errors=True)
    after_ids = sorted(i for page in store.pages(include_documents=False) for i in page.ids)
    assert after_ids == before_ids and len(after_ids) > 1000
    assert LexicalIndex.stored_fingerprint(settings.bm25_path) == before_bm25
    assert not (settings.data_dir / "bm25" / "beir-beir-tiny").exists()


def test_beir_cli_reports_a_malformed_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evals.run import main

    root = _write(tmp_path / "bad", DOCS, QUERIES, f"{QRELS_HEADER}\nq1\tmissing-doc\t1\n")
    assert main(["--beir", str(root), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "test.tsv:2" in err and "corpus-id 'missing-doc'" in err
    assert not (tmp_path / "out").exists()  # nothing indexed or written for a dataset that does not load
