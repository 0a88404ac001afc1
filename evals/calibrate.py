"""Calibrate the lexical support judge's threshold: how often does it agree with labels we trust?

    python -m evals.calibrate --split dev --fresh-index            # or --data-dir .rag
    python -m evals.calibrate --split dev --thresholds 0.2,0.3,0.4,0.5,0.6 --out calib.json

Labelled (claim, evidence) pairs come from the curated set's answerable questions (hybrid retrieval, extractive
answers), with one negative per positive drawn (seeded) from the abstracts of other papers:

- ``answer``: each answer statement that cites a gold paper, against that gold abstract (positive) and against
  a random non-gold abstract (negative). Extractive statements quote their abstract, so positives are easy: this
  set mostly measures false positives on unrelated abstracts.
- ``question``: the question itself, written in the curator's own words, against each gold abstract
  (positive) and a random non-gold abstract (negative): the paraphrase case an LLM answer produces.
- ``question-hard``: the same positives against the best-ranked *retrieved* non-gold abstract (same topic, a
  near miss). Noisy: a near miss can partly support a question, so read it as a lower bound.

Agreement is accuracy over the balanced pairs; precision/recall treat "supported" as the positive class.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.data import EvalQuestion, load_questions
from evals.judges import LexicalJudge
from evals.metrics import answer_statements
from rag.citations import parse_markers, support

__all__ = ["THRESHOLDS", "agreement", "calibrate", "label_pairs", "main"]

THRESHOLDS: tuple[float, ...] = (0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6)
Pair = tuple[str, str, bool]  # (claim, evidence, supported?)


def _corpus_abstracts(corpus_dir: Path) -> dict[str, str]:
    from ingest.dedup import dedup
    from ingest.formats import read_paths

    return {p.paper_id: p.abstract for p in dedup(read_paths([corpus_dir])[0].records)}


def label_pairs(
    assistant: Any, questions: Sequence[EvalQuestion], abstracts: dict[str, str], seed: int = 7
) -> dict[str, list[Pair]]:
    """The three labelled pair sets described in the module docstring."""
    rng = random.Random(seed)
    ids = sorted(abstracts)
    sets: dict[str, list[Pair]] = {"answer": [], "question": [], "question-hard": []}

    def random_other(exclude: set[str]) -> str:
        while True:
            pid = rng.choice(ids)
            if pid not in exclude:
                return abstracts[pid]

    for q in questions:
        if not q.answerable or q.history:
            continue
        gold = set(q.gold)
        answer = assistant.ask(q.question, extractive=True)
        by_n = {c.n: c.paper_id for c in answer.citations}
        shown = {s.paper_id for s in answer.sources}
        for sentence in answer_statements(answer):
            for n in dict.fromkeys(parse_markers(sentence)):
                pid = by_n.get(n)
                if pid in gold and pid in abstracts:
                    sets["answer"].append((sentence, abstracts[pid], True))
                    sets["answer"].append((sentence, random_other(gold | shown), False))
        hits = assistant.retrieve(q.question, k=10)
        near = next((h.paper_id for h in hits if h.paper_id not in gold and h.paper_id in abstracts), None)
        for g in q.gold:
            if g not in abstracts:
                continue
            sets["question"].append((q.question, abstracts[g], True))
            sets["question"].append((q.question, random_other(gold), False))
            if near is not None:
                sets["question-hard"].append((q.question, abstracts[g], True))
                sets["question-hard"].append((q.question, abstracts[near], False))
    return sets


def agreement(pairs: Sequence[Pair], threshold: float) -> dict[str, float]:
    """Accuracy, precision, recall and false-positive rate of ``LexicalJudge(threshold)`` on labelled pairs."""
    judge = LexicalJudge(threshold)
    tp = fp = tn = fn = 0
    for claim, evidence, label in pairs:
        said = judge.supports(claim, [evidence])
        tp += said and label
        fp += said and not label
        tn += (not said) and (not label)
        fn += (not said) and label
    n = len(pairs)
    return {
        "n": float(n),
        "agreement": (tp + tn) / n if n else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "false_positive_rate": fp / (fp + tn) if fp + tn else float("nan"),
    }


def calibrate(
    assistant: Any,
    questions: Sequence[EvalQuestion],
    abstracts: dict[str, str],
    thresholds: Sequence[float] = THRESHOLDS,
    seed: int = 7,
) -> dict[str, Any]:
    """``{"pairs": {set: n}, "table": {set: {threshold: metrics}}, "scores": {set: [(score, label)]}}``."""
    sets = label_pairs(assistant, questions, abstracts, seed)
    table = {name: {f"{t:g}": agreement(pairs, t) for t in thresholds} for name, pairs in sets.items()}
    scores = {
        name: [(support(claim, evidence)[0], label) for claim, evidence, label in pairs] for name, pairs in sets.items()
    }
    return {"pairs": {name: len(p) for name, p in sets.items()}, "table": table, "scores": scores}


def markdown(result: dict[str, Any]) -> str:
    lines: list[str] = []
    for name, rows in result["table"].items():
        lines += [
            f"**{name}** ({result['pairs'][name]} pairs, half positive)",
            "",
            "| threshold | agreement | precision | recall | false-positive rate |",
            "|---|---|---|---|---|",
        ]
        for t, m in rows.items():
            lines.append(
                f"| {t} | {m['agreement']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} | "
                f"{m['false_positive_rate']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    parser.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="index location (default: the settings' data_dir)")
    parser.add_argument("--fresh-index", action="store_true", help="ingest the bundled corpus into a temp dir")
    parser.add_argument("--out", type=Path, help="write the table (JSON) here")
    args = parser.parse_args(argv)

    from rag.assistant import Assistant
    from rag.settings import Settings

    questions = load_questions(split=None if args.split == "all" else args.split)
    thresholds = [float(t) for t in args.thresholds.split(",") if t.strip()]
    with tempfile.TemporaryDirectory(prefix="rag-calib-") as tmp:
        data_dir = Path(tmp) if args.fresh_index else args.data_dir
        settings = Settings(data_dir=data_dir) if data_dir else Settings()
        assistant = Assistant.open(settings)
        result = calibrate(assistant, questions, _corpus_abstracts(settings.corpus_dir), thresholds, args.seed)
    print(markdown(result))
    if args.out:
        slim = {k: v for k, v in result.items() if k != "scores"}
        args.out.write_text(json.dumps(slim, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
