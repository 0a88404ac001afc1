"""The ablation sweep on a slice of the dev split (shared bundled index, no re-chunking): invariants that must
hold whatever the numbers are."""

from __future__ import annotations

from typing import Any

import pytest

from evals.ablations import COLUMNS, KS, MIN_SIMILARITIES, MODES, ablation_rows, markdown
from evals.data import CURATED, load_questions
from rag.protocols import Embedder


@pytest.mark.slow
def test_ablation_sweeps(bundled_index: tuple[Any, Any, Any], embedder: Embedder) -> None:
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    dev = [q for q in load_questions(CURATED, split="dev") if not q.history]
    counts = {"paraphrase": 3, "keyword": 2, "unanswerable_offtopic": 3, "unanswerable_absent": 3}
    picked = [q for t, n in counts.items() for q in [q for q in dev if q.type == t][:n]]
    rows = ablation_rows(assistant, {"dev": picked})
    by_sweep = {s: [r for r in rows if r["sweep"] == s] for s in ("mode", "k", "min_similarity")}
    assert [r["variant"] for r in by_sweep["mode"]] == list(MODES)
    assert [r["variant"] for r in by_sweep["k"]] == [f"k={k}" for k in KS]
    assert len(by_sweep["min_similarity"]) == len(MIN_SIMILARITIES)
    # retrieval metrics rank 10 papers for the question itself: k and the refusal threshold cannot move them
    for sweep in ("k", "min_similarity"):
        assert len({(r["nDCG@10"], r["MRR@10"]) for r in by_sweep[sweep]}) == 1, sweep
    # a higher similarity floor refuses at least as often
    refused = [r["unans. refused"] for r in by_sweep["min_similarity"]]
    false_refusals = [r["false refusals"] for r in by_sweep["min_similarity"]]
    assert refused == sorted(refused) and false_refusals == sorted(false_refusals)
    md = markdown(rows)
    for sweep in ("### mode", "### k", "### min_similarity"):
        assert sweep in md
    assert "| " + " | ".join(h for h, _, _ in COLUMNS) + " |" in md
