"""Choose the answered / partial / refused thresholds on the dev split, and plot the trade-off.

    python -m evals.calibrate_outcomes --data-dir .rag --out calib-out      # dev split (the default)
    python -m evals.calibrate_outcomes --split test --fixed                   # report the chosen settings on test

Retrieval and the per-paper sentence evidence do not depend on the thresholds, so they are computed once per
question; every threshold combination then re-runs only ``rag.answerability.decide`` (pure arithmetic). The
choice: the combination with the most honest outcomes, averaged over the kinds of question (answerable answered,
near misses flagged, off-topic and absent refused), among those with at most ``MAX_FALSE_REFUSALS`` of the
answerable questions refused, ties broken by the mean of cited precision (one-paper questions) and gold recall
(several-paper questions). Writes calibration.json and outcomes_tradeoff.png (refusal recall against false
refusals as the topicality margin moves).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from evals.data import EvalQuestion, load_all
from rag.answerability import Decision, Evidence, Thresholds, decide_on

__all__ = ["GRID", "Case", "choose", "citation_breakdown", "collect", "score"]

MAX_FALSE_REFUSALS = 0.02
GRID: dict[str, tuple[float, ...]] = {
    "min_similarity": (0.1, 0.15, 0.2),
    "min_margin": tuple(round(-0.1 + 0.025 * i, 3) for i in range(9)),
    "min_margin_named": (-0.3, -0.25, -0.2, -0.15, -0.1, -0.05, 0.0, 0.025),
    "min_detail": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "companion_ratio": (0.5, 0.6, 0.7, 0.8, 1.0),
    "companion_ratio_one": (0.5, 0.7, 0.8, 1.0, 1.2),
    "companion_score_ratio": (0.5, 0.6, 0.7, 0.8, 0.9),
    "companion_support_one": (0.0, 0.1, 0.2, 0.3, 0.4),
    "min_rest_margin": (-1.0, -0.1, -0.05, -0.025, 0.0),
    "min_rest_support": (0.2, 0.3, 0.4),
}
# Thresholds that choose which papers an answer quotes, never the outcome: for a given setting of the others the
# honest-outcome score is the same, so the search skips them when that score is already beaten.
CITATION_KEYS = ("companion_ratio", "companion_ratio_one", "companion_score_ratio", "companion_support_one")


@dataclass(frozen=True)
class Case:
    q: EvalQuestion
    evidence: Evidence


def collect(assistant: Any, questions: Sequence[EvalQuestion]) -> list[Case]:
    """``Assistant.evidence`` per question (no follow-ups: they need the conversation replayed, which the eval
    runner does)."""
    return [Case(q, assistant.evidence(q.question)) for q in questions if not q.history]


def _text(decision: Decision) -> str:
    from rag.extractive import extractive_answer

    return extractive_answer(decision)


def score(cases: Sequence[Case], th: Thresholds) -> dict[str, float]:
    n: dict[str, int] = {}
    hit: dict[str, float] = {}

    def add(key: str, value: float) -> None:
        n[key] = n.get(key, 0) + 1
        hit[key] = hit.get(key, 0.0) + value

    for c in cases:
        d = decide_on(c.evidence, th)
        cited = [p.source.paper_id for p in d.evidence]
        if c.q.answerable:
            add("false_refusals", d.outcome == "refused")
            add("answerable_partial", d.outcome == "partial")
            add("honest", d.outcome == "answered")
            if cited:
                add("gold_cited", any(g in c.q.gold for g in cited))
                if len(c.q.gold) == 1:
                    add("cited_precision", sum(g in c.q.gold for g in cited) / len(cited))
                else:  # an answer quotes at most 3 papers
                    add("multi_gold_recall", len(set(cited) & set(c.q.gold)) / min(len(c.q.gold), 3))
            if c.q.must_contain:
                text = _text(d)
                add("fact_present", any(s in text for s in c.q.must_contain))
        elif c.q.type in ("near_miss", "unanswerable_absent"):
            add(f"{c.q.type}_flagged", d.outcome != "answered")
            add("honest", d.outcome != "answered")
        else:
            add(f"{c.q.type}_refused", d.outcome == "refused")
            add("honest", d.outcome == "refused")
    return {k: hit[k] / n[k] for k in sorted(n)}


def citation_breakdown(cases: Sequence[Case], th: Thresholds) -> dict[str, dict[str, float]]:
    """Citation on answered one-paper questions, own-words questions apart from the ones written from the
    abstracts, next to what retrieval bounds it by: the gold paper ranked first, and retrieved at all. An answer
    can cite the gold paper only when retrieval returns it, and leads with it only when it is ranked first."""
    groups: dict[str, dict[str, list[float]]] = {}
    for c in cases:
        if not c.q.answerable or len(c.q.gold) != 1:
            continue
        d = decide_on(c.evidence, th)
        cited = [p.source.paper_id for p in d.evidence]
        if d.outcome == "refused" or not cited:
            continue
        ranked = [s.paper_id for s in c.evidence.sources]
        row = groups.setdefault("own words" if c.q.type == "own_words" else "written from the abstracts", {})
        for key, value in (
            ("questions", 1.0),
            ("gold ranked first", float(ranked[:1] == list(c.q.gold))),
            ("gold retrieved", float(c.q.gold[0] in ranked)),
            ("gold cited", float(c.q.gold[0] in cited)),
            ("cited precision", cited.count(c.q.gold[0]) / len(cited)),
        ):
            row.setdefault(key, []).append(value)
    return {
        group: {k: (sum(v) if k == "questions" else round(sum(v) / len(v), 3)) for k, v in row.items()}
        for group, row in sorted(groups.items())
    }


def choose(cases: Sequence[Case], grid: dict[str, tuple[float, ...]] = GRID) -> tuple[Thresholds, dict[str, float]]:
    best: tuple[tuple[float, ...], Thresholds, dict[str, float]] | None = None
    outcome_keys = [k for k in grid if k not in CITATION_KEYS]
    citation_keys = [k for k in grid if k in CITATION_KEYS]
    first_citation = {k: grid[k][0] for k in citation_keys}
    seen: set[tuple[str, ...]] = set()
    for outcome_values in itertools.product(*(grid[k] for k in outcome_keys)):
        outcome_setting = dict(zip(outcome_keys, outcome_values, strict=True))
        # Settings that give every question the same outcome quote the same papers under every citation setting
        # (the lead and its companions do not depend on the outcome thresholds), so they score the same: only the
        # first of them, the one an exhaustive search would keep, is searched.
        outcomes = tuple(decide_on(c.evidence, Thresholds(**outcome_setting, **first_citation)).outcome for c in cases)
        if outcomes in seen:
            continue
        seen.add(outcomes)
        for i, citation_values in enumerate(itertools.product(*(grid[k] for k in citation_keys))):
            values = outcome_setting | dict(zip(citation_keys, citation_values, strict=True))
            th = Thresholds(**values)
            m = score(cases, th)
            if m.get("false_refusals", 0.0) > MAX_FALSE_REFUSALS:
                break  # the outcomes, hence false refusals, are the same for every citation setting
            # Honest outcomes first, balanced over the kinds of question (answerable questions outnumber the
            # others 4:1, so a plain rate would trade off-topic refusals for nothing); then citing the right
            # papers: not padding one-paper answers, and citing several gold papers when several qualify.
            kinds = ["near_miss_flagged", "unanswerable_offtopic_refused", "unanswerable_absent_flagged"]
            balanced = (1 - m.get("false_refusals", 0.0) - m.get("answerable_partial", 0.0)) + sum(
                m.get(k, 1.0) for k in kinds
            )
            if i == 0 and best is not None and round(balanced, 6) < best[0][0]:
                break
            cites = (m.get("cited_precision", 0.0) + m.get("multi_gold_recall", 0.0)) / 2
            key = (round(balanced, 6), cites, m.get("fact_present", 0.0))
            if best is None or key > best[0]:
                best = (key, th, m)
    if best is None:
        raise ValueError(f"no threshold combination keeps false refusals at or below {MAX_FALSE_REFUSALS}")
    return best[1], best[2]


def tradeoff_plot(cases: Sequence[Case], th: Thresholds, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys, labels = [], [], []
    for margin in GRID["min_margin"]:
        m = score(cases, replace(th, min_margin=margin))
        unans = [v for k, v in m.items() if k.startswith("unanswerable")]
        xs.append(m.get("false_refusals", 0.0))
        ys.append(sum(unans) / len(unans) if unans else math.nan)
        labels.append(f"{margin:+.3f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, ys, marker="o")
    for x, y, label in zip(xs, ys, labels, strict=True):
        ax.annotate(label, (x, y), fontsize=7, xytext=(3, -8), textcoords="offset points")
    ax.axvline(MAX_FALSE_REFUSALS, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("answerable questions refused (false refusals)")
    ax.set_ylabel("off-topic / absent questions refused")
    ax.set_title("Topicality margin (labels), other thresholds as chosen; dev split")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.calibrate_outcomes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["dev", "test"], default="dev")
    parser.add_argument("--data-dir", type=Path, help="index of the bundled corpus (default: the settings')")
    parser.add_argument("--fixed", action="store_true", help="score the settings' thresholds, choose nothing")
    parser.add_argument("--out", type=Path, help="write calibration.json and outcomes_tradeoff.png here")
    args = parser.parse_args(argv)
    from rag.assistant import Assistant
    from rag.settings import Settings

    settings = Settings(data_dir=args.data_dir) if args.data_dir else Settings()
    assistant = Assistant.open(settings)
    cases = collect(assistant, load_all(args.split))
    if args.fixed or args.split == "test":
        th, metrics = assistant.thresholds, score(cases, assistant.thresholds)
    else:
        th, metrics = choose(cases)
    report = {
        "split": args.split,
        "thresholds": asdict(th),
        "metrics": metrics,
        "one_paper_citation": citation_breakdown(cases, th),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "calibration.json").write_text(json.dumps(report, indent=2) + "\n")
        tradeoff_plot(cases, th, args.out / "outcomes_tradeoff.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
