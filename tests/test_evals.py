"""The eval harness: dataset validation, metrics on tiny fixtures, and the regression gate on the test split."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evals.data import (
    ANSWERABLE_TYPES,
    CURATED,
    DatasetError,
    EvalQuestion,
    corpus_ids,
    load_all,
    load_questions,
    validate,
)
from evals.metrics import (
    citation_scores,
    citations_valid,
    gold_citation_recall,
    must_contain_hit,
    refusal_scores,
    retrieval_scores,
)
from evals.run import BASELINE, compare, headline, load_result, run_eval, write_results
from rag.answer import Answer
from rag.protocols import Embedder
from rag.types import Citation, Source

TOLERANCE = 0.02  # the gate fails when a headline metric drops more than this below evals/baseline.json


# --- dataset -----------------------------------------------------------------------------------------------------


def test_curated_set_is_valid_against_the_corpus() -> None:
    questions = load_questions(CURATED)
    validate(questions, corpus_ids())  # every gold id is a real paper_id of the bundled corpus
    counts = Counter(q.type for q in questions)
    assert len(questions) >= 120
    assert all(counts[t] >= 15 for t in ("paraphrase", "keyword", "fact", "multi"))
    assert counts["followup"] >= 8
    assert counts["unanswerable_offtopic"] >= 10 and counts["unanswerable_absent"] >= 10
    for t in counts:  # stratified ~40/60 dev/test within every type
        of_type = [q for q in questions if q.type == t]
        assert 0.3 <= sum(q.split == "dev" for q in of_type) / len(of_type) <= 0.5, t


def test_fact_strings_are_verbatim_in_a_gold_abstract() -> None:
    from ingest.dedup import dedup
    from ingest.formats import read_paths

    abstracts = {p.paper_id: p.abstract for p in dedup(read_paths([Path("data/hf-papers")])[0].records)}
    for q in load_questions(CURATED):
        for s in q.must_contain:
            assert any(s in abstracts[g] for g in q.gold), (q.id, s)


def _q(**kw: Any) -> EvalQuestion:
    base: dict[str, Any] = {"id": "x", "type": "paraphrase", "question": "q?", "gold": ["a"], "split": "test"}
    return EvalQuestion.from_dict({**base, **kw})


def test_validation_reports_every_problem() -> None:
    bad = [
        _q(id="a1", gold=["missing-id"]),
        _q(id="a1"),  # duplicate id
        _q(id="u", type="unanswerable_absent", gold=["a"]),
        _q(id="f", type="fact"),  # no must_contain
        _q(id="fu", type="followup"),  # no history
        _q(id="m", type="multi", gold=[]),
    ]
    with pytest.raises(DatasetError) as err:
        validate(bad, {"a"})
    msg = str(err.value)
    for needle in ("missing-id", "duplicate id", "unanswerable question with gold", "must_contain", "history", "m:"):
        assert needle in msg
    validate([_q(), _q(id="y", type="unanswerable_offtopic", gold=[])], {"a"})


def test_loader_rejects_unknown_types_and_splits(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "1", "type": "nonsense", "question": "?", "gold": [], "split": "dev"}) + "\n")
    with pytest.raises(DatasetError, match="unknown type"):
        load_questions(path)
    path.write_text(json.dumps({"id": "1", "type": "keyword", "question": "?", "gold": [], "split": "train"}) + "\n")
    with pytest.raises(DatasetError, match="split"):
        load_questions(path)


# --- metrics -----------------------------------------------------------------------------------------------------


@pytest.mark.slow  # ranx JIT-compiles its numba kernels in every process: ~15 s
def test_retrieval_metrics_duplicates_count_once_at_best_rank() -> None:
    scores = retrieval_scores({"q": ["a", "b"]}, {"q": ["x", "a", "a", "b"]})["q"]
    # deduplicated ranking x, a, b: DCG = 1/log2(3) + 1/log2(4), ideal = 1 + 1/log2(3)
    ideal = 1 + 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx((1 / math.log2(3) + 0.5) / ideal)
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@5"] == 1.0 and scores["hit_rate@1"] == 0.0


@pytest.mark.slow  # ranx JIT-compiles its numba kernels in every process: ~15 s
def test_retrieval_metrics_keep_system_order_on_ties_and_skip_unanswerable() -> None:
    # the system's order is the ranking even if its raw scores tie: gold second -> MRR 0.5, whatever the ids sort as
    out = retrieval_scores({"q1": ["b"], "q2": [], "q3": ["z"]}, {"q1": ["c", "b", "a"], "q3": []})
    assert set(out) == {"q1", "q3"}
    assert out["q1"]["mrr@10"] == pytest.approx(0.5)
    assert out["q3"]["ndcg@10"] == 0.0 and out["q3"]["recall@10"] == 0.0


def test_answer_metrics() -> None:
    assert gold_citation_recall(["a", "b"], ["b", "c", "b"]) == 0.5
    assert math.isnan(gold_citation_recall([], ["a"]))
    assert must_contain_hit("It reaches 76.3%  Spearman", ["76.3%", "spearman"])
    assert not must_contain_hit("It reaches 76.3%", ["81.6%"])


def test_refusal_scores() -> None:
    # (answerable, refused, cites_gold)
    rows = [(True, False, True), (True, True, False), (False, True, False), (False, False, False)]
    s = refusal_scores(rows)
    assert s.refusal_accuracy == 0.5
    assert s.refusal_precision == 0.5  # 1 correct refusal out of 2 refusals
    assert s.refusal_recall == 0.5
    assert s.false_refusal_rate == 0.5
    assert s.answer_precision == 0.5  # answered 2, correct 1
    assert s.answer_accuracy == 0.5  # correct answer + correct refusal, of 4


def _answer(text: str, cited: list[tuple[int, str]], refused: bool = False) -> Answer:
    sources = [
        Source(1, "p1", "T1", "SimCSE reaches 76.3% Spearman correlation on STS tasks.", 1.0, ""),
        Source(2, "p2", "T2", "Prototypical networks classify by distance to class prototypes.", 0.9, ""),
    ]
    citations = [Citation(n, pid, "", "", 1.0) for n, pid in cited]
    return Answer("q", "q", text, citations, sources, "refused" if refused else "answered", "extractive", "")


def test_citation_validity_and_alce_scores() -> None:
    # citations are renumbered by first use: [1] may be source 2
    good = _answer("Prototypical networks classify by distance to class prototypes [1].", [(1, "p2")])
    assert citations_valid(good)
    s = citation_scores(good)
    assert s.recall == 1.0 and s.precision == 1.0
    assert not citations_valid(_answer("Something [2].", [(1, "p1")]))  # [2] names no citation
    assert not citations_valid(_answer("Something [1].", [(1, "p9")]))  # cited paper was never shown
    wrong = _answer("SimCSE reaches 76.3% Spearman correlation on STS tasks [1].", [(1, "p2")])
    assert citation_scores(wrong).recall == 0.0 and citation_scores(wrong).precision == 0.0
    uncited = _answer("SimCSE reaches 76.3% Spearman correlation on STS tasks.", [])
    assert citation_scores(uncited).recall == 0.0 and math.isnan(citation_scores(uncited).precision)


def test_alce_statements_keep_their_trailing_markers() -> None:
    # The extractive layout: a lead-in line, then quotes each followed by its marker. The sentence splitter hands
    # "[1]" to the *next* quote; the statements must keep each marker with the quote it follows.
    text = (
        "2 indexed papers bear on this, quoted verbatim:\n\n"
        "- **T1**: “SimCSE reaches 76.3% Spearman correlation on STS tasks.” [1] "
        "“Prototypical networks classify by distance to class prototypes.” [2]"
    )
    answer = _answer(text, [(1, "p1"), (2, "p2")])
    s = citation_scores(answer)
    assert s.statements == 2  # the lead-in ending with ":" is not a statement
    assert s.recall == 1.0 and s.precision == 1.0 and s.citations == 2


# --- the regression gate ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_split_result(bundled_index: tuple[Any, Any, Any], embedder: Embedder) -> Any:
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    return run_eval(assistant, load_all(split="test"))


@pytest.mark.slow
def test_regression_gate(test_split_result: Any) -> None:
    baseline = json.loads(BASELINE.read_text())["metrics"]
    current = headline(test_split_result)
    assert set(current) == set(baseline)
    drops = {k: (baseline[k], current[k]) for k in baseline if current[k] < baseline[k] - TOLERANCE}
    assert not drops, f"headline metrics dropped more than {TOLERANCE} below evals/baseline.json: {drops}"


@pytest.mark.slow
def test_results_are_written_and_compare(test_split_result: Any, tmp_path: Path) -> None:
    write_results(test_split_result, tmp_path, plots=False)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["judge"] == "lexical-support@0.4"
    assert {r["type"] for r in data["rows"]} >= set(ANSWERABLE_TYPES)
    assert "| paraphrase |" in (tmp_path / "report.md").read_text()
    again = load_result(tmp_path)
    same = compare(again, test_split_result)
    assert same["diff"] == 0.0 and same["wilcoxon_p"] == 1.0
