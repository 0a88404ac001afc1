"""UI feedback -> candidate eval rows: type/gold guesses per vote, dedup, validation, and the guarantee that
candidates never load as curated questions until a reviewer promotes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.data import CURATED, DatasetError, corpus_ids, load_questions
from evals.feedback_cases import (
    candidate_problems,
    candidates_from_feedback,
    read_feedback,
    write_candidates,
)
from rag.answer import Answer
from rag.protocols import Embedder
from rag.types import Citation, Source
from ui.feedback import Vote, record_feedback

SIMCSE = "simcse-simple-contrastive-learning-of-sentence-e-b473f48a"
CLUSTERNS = "clustering-aware-negative-sampling-for-unsupervi-bf605d7f"
TITLES = {
    SIMCSE: "SimCSE: Simple Contrastive Learning of Sentence Embeddings",
    CLUSTERNS: "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation",
}


def _answer(question: str, cited: list[str], refused: bool = False, query: str | None = None, text: str = "") -> Answer:
    sources = [Source(i, pid, TITLES.get(pid, pid), "abstract", 1.0, "") for i, pid in enumerate(cited, start=1)]
    citations = [Citation(i, pid, TITLES.get(pid, pid), "quote", 0.9) for i, pid in enumerate(cited, start=1)]
    body = text or ("The indexed abstracts don't answer this (…)." if refused else "An answer [1].")
    return Answer(
        question,
        query or question,
        body,
        [] if refused else citations,
        sources,
        "refused" if refused else "answered",
        "extractive",
        "",
    )


def _feedback(path: Path, votes: list[tuple[Answer, Vote]]) -> Path:
    for answer, vote in votes:
        record_feedback(path, answer, vote)  # the UI's own writer: the real row format
    return path


def test_votes_become_typed_candidates(tmp_path: Path) -> None:
    offtopic = "The indexed abstracts don't answer this (no abstract is close to the question (best similarity 0.1))."
    absent = "The indexed abstracts don't answer this (no retrieved abstract mentions GPT-7)."
    everyday = "The indexed abstracts don't answer this (the question does not read as one about ML research)."
    path = _feedback(
        tmp_path / "feedback.jsonl",
        [
            (_answer("Which sentence embedding methods use dropout as noise?", [SIMCSE]), "up"),
            (_answer("How does SimCSE build positive pairs?", [SIMCSE]), "up"),  # names a cited title's word
            (_answer("Methods mining hard negatives for sentence embeddings", [SIMCSE, CLUSTERNS]), "up"),
            (_answer("What did they evaluate on?", [SIMCSE], query="What did they evaluate on? (SimCSE)"), "up"),
            (_answer("How do I bake sourdough bread?", [], refused=True, text=offtopic), "up"),
            (_answer("What does GPT-7 score on MMLU?", [], refused=True, text=absent), "down"),
            (_answer("Which step-down transformer suits my porch light?", [], refused=True, text=everyday), "up"),
            (_answer("Which paper introduced contrastive predictive coding?", [SIMCSE]), "down"),
        ],
    )
    rows, skipped = read_feedback(path)
    assert len(rows) == 8 and skipped == []
    by_q = {c["question"]: c for c in candidates_from_feedback(rows, corpus_ids())}
    assert by_q["Which sentence embedding methods use dropout as noise?"]["type"] == "paraphrase"
    assert by_q["Which sentence embedding methods use dropout as noise?"]["gold"] == [SIMCSE]
    assert by_q["How does SimCSE build positive pairs?"]["type"] == "keyword"
    multi = by_q["Methods mining hard negatives for sentence embeddings"]
    assert multi["type"] == "multi" and multi["gold"] == [SIMCSE, CLUSTERNS]
    follow = by_q["What did they evaluate on?"]
    assert follow["type"] == "followup" and "history" in follow["hint"]
    bread = by_q["How do I bake sourdough bread?"]
    assert bread["type"] == "unanswerable_offtopic" and bread["gold"] == []
    assert by_q["Which step-down transformer suits my porch light?"]["type"] == "unanswerable_offtopic"
    gpt = by_q["What does GPT-7 score on MMLU?"]
    assert gpt["type"] == "unanswerable_absent" and "false refusal" in gpt["hint"]
    wrong = by_q["Which paper introduced contrastive predictive coding?"]
    assert wrong["gold"] == [] and wrong["not_gold"] == [SIMCSE] and "gold unknown" in wrong["hint"]
    for c in by_q.values():
        assert c["split"] == "candidate" and c["needs_review"] is True and c["id"].startswith("cand-")
        assert candidate_problems(c, corpus_ids()) == []


def test_dedup_by_question_counts_votes_and_skips_curated(tmp_path: Path) -> None:
    curated_question = load_questions(CURATED)[0].question
    path = _feedback(
        tmp_path / "feedback.jsonl",
        [
            (_answer("Tell me about SimCSE?!", [SIMCSE]), "down"),
            (_answer("tell me  about simcse", [SIMCSE]), "up"),  # same question: case, spaces, punctuation
            (_answer(curated_question, [SIMCSE]), "up"),  # already in the curated set
            (_answer("What is ClusterNS?", ["not-a-real-paper", CLUSTERNS]), "up"),
        ],
    )
    rows, _ = read_feedback(path)
    cands = candidates_from_feedback(rows, corpus_ids(), existing=[q.question for q in load_questions(CURATED)])
    assert [c["question"] for c in cands] == ["tell me about simcse", "What is ClusterNS?"]
    simcse = cands[0]
    assert simcse["votes"] == {"up": 1, "down": 1} and "conflicting votes" in simcse["hint"]
    assert simcse["gold"] == [SIMCSE] and simcse["feedback_lines"] == [1, 2]  # the latest (up) vote decides
    assert cands[1]["gold"] == [CLUSTERNS] and "not-a-real-paper" in cands[1]["hint"]


def test_bad_feedback_lines_are_skipped_with_file_and_line(tmp_path: Path) -> None:
    path = _feedback(tmp_path / "feedback.jsonl", [(_answer("What is SimCSE?", [SIMCSE]), "up")])
    with path.open("a", encoding="utf-8") as f:
        f.write('{"vote": "up", "question": "cut off by a cra\n')
        f.write(json.dumps({"vote": "meh", "question": "x"}) + "\n")
        f.write(json.dumps({"vote": "up", "question": "  "}) + "\n")
        f.write("[1, 2]\n")
    rows, skipped = read_feedback(path)
    assert len(rows) == 1
    assert [s.split(":")[1] for s in skipped] == ["2", "3", "4", "5"]
    assert "not JSON" in skipped[0] and "vote must be" in skipped[1] and "no question" in skipped[2]


def _valid(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": "cand-1", "type": "paraphrase", "question": "q?", "gold": [SIMCSE]}
    return {**row, "split": "candidate", "needs_review": True, **kw}


def test_candidate_validation() -> None:
    known = corpus_ids()
    assert candidate_problems(_valid(), known) == []
    assert "unknown type" in candidate_problems(_valid(type="trivia"), known)[0]
    assert "needs split 'candidate'" in candidate_problems(_valid(split="test"), known)[0]
    assert "needs split 'candidate'" in candidate_problems(_valid(needs_review=False), known)[0]
    assert "not in the corpus" in candidate_problems(_valid(gold=["nope"]), known)[0]
    assert "unanswerable type with gold" in candidate_problems(_valid(type="unanswerable_absent"), known)[0]
    assert "'gold' must be a list" in candidate_problems(_valid(gold=SIMCSE), known)[0]
    with pytest.raises(DatasetError, match="duplicate id"):
        write_candidates([_valid(), _valid()], Path("/nonexistent/never-written.jsonl"), known)


def test_candidates_never_load_as_curated_questions_until_promoted(tmp_path: Path) -> None:
    out = tmp_path / "candidates.jsonl"
    write_candidates([_valid()], out, corpus_ids())
    with pytest.raises(DatasetError, match=r"candidates\.jsonl:1: .*unreviewed candidate"):
        load_questions(out)
    row = json.loads(out.read_text())
    out.write_text(json.dumps({**row, "split": "test"}) + "\n")  # split flipped, needs_review forgotten
    with pytest.raises(DatasetError, match="unreviewed candidate"):
        load_questions(out)
    promoted = {k: v for k, v in row.items() if k != "needs_review"} | {"split": "test"}
    out.write_text(json.dumps(promoted) + "\n")
    (q,) = load_questions(out)
    assert q.split == "test" and q.gold == (SIMCSE,)


def test_from_feedback_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evals.run import main

    path = _feedback(
        tmp_path / "feedback.jsonl",
        [(_answer("Which methods use dropout as noise?", [SIMCSE]), "up"), (_answer("Bread?", [], True), "up")],
    )
    out = tmp_path / "cands" / "candidates.jsonl"
    assert main(["--from-feedback", str(path), "--out", str(out)]) == 0
    assert "2 feedback rows (0 skipped) -> 2 candidates" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["type"] for r in rows] == ["paraphrase", "unanswerable_absent"]
    assert main(["--from-feedback", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2
    with pytest.raises(SystemExit):
        main(["--from-feedback", str(path)])  # --out is required


@pytest.mark.slow
def test_real_answers_to_candidates(bundled_index: tuple[Any, Any, Any], embedder: Embedder, tmp_path: Path) -> None:
    """The real chain: Assistant answers on the bundled index -> the UI's feedback writer -> candidates."""
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    answered = assistant.ask("Which method mines hard negatives with K-means clustering for sentence embeddings?")
    refused = assistant.ask("What is the capital of Australia?")  # reads as geography, not ML research
    assert not answered.refused and refused.refused
    path = _feedback(tmp_path / "feedback.jsonl", [(answered, "up"), (refused, "up")])
    rows, _ = read_feedback(path)
    cands = candidates_from_feedback(rows, corpus_ids())
    write_candidates(cands, tmp_path / "c.jsonl", corpus_ids())
    good, off = cands
    assert CLUSTERNS in good["gold"] and good["type"] in ("paraphrase", "multi", "keyword")
    assert off["type"] == "unanswerable_offtopic" and off["gold"] == []
