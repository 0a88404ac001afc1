"""Run the curated eval set against an Assistant and write results.json + report.md (+ plots).

    python -m evals.run --split test --out eval-out            # extractive mode, hybrid retrieval
    python -m evals.run --split all --modes hybrid,dense,bm25 --out eval-out
    python -m evals.run --split test --fresh-index --write-baseline evals/baseline.json
    python -m evals.run --split test --judge llm --out eval-out     # ALCE scores judged by the configured LLM
    python -m evals.run --beir path/to/beir-dataset --out beir-out  # retrieval on a BEIR dataset (evals.beir)
    python -m evals.run --from-feedback .rag/feedback.jsonl --out candidates.jsonl   # evals.feedback_cases
    python -m evals.run --redteam --out redteam-out     # planted instructions (evals.redteam); + --llm-base-url URL

``--fresh-index`` ingests the bundled corpus into a temporary directory (what the regression test does), so the
numbers do not depend on whatever is in ./.rag.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.data import (
    ANSWERABLE_TYPES,
    NEAR_MISS_TYPES,
    UNANSWERABLE_TYPES,
    EvalQuestion,
    corpus_ids,
    load_all,
    load_questions,
    validate,
)
from evals.judges import DEFAULT_THRESHOLD, JUDGES, Judge, JudgeError, LexicalJudge, build_judge
from evals.metrics import (
    JUDGE,
    RETRIEVAL_METRICS,
    citation_scores,
    citations_valid,
    gold_citation_recall,
    mean,
    must_contain_hit,
    percentile,
    refusal_scores,
    retrieval_scores,
)
from evals.provenance import git_commit, json_safe
from rag.answer import Answer
from rag.assistant import Assistant, Turn
from rag.types import Mode

__all__ = [
    "BASELINE",
    "HEADLINE_MODE",
    "EvalResult",
    "compare",
    "headline",
    "load_result",
    "main",
    "run_eval",
    "write_results",
]

TYPES: tuple[str, ...] = ANSWERABLE_TYPES + NEAR_MISS_TYPES + UNANSWERABLE_TYPES
# own_words questions are also reported by vocabulary overlap with their abstract (evals.protocol).
OWN_WORDS_SLICES: tuple[str, ...] = ("own_words: no vocabulary", "own_words: some vocabulary")
RETRIEVE_K = 10  # papers ranked for the retrieval metrics (nDCG@10 etc.); the answer itself uses settings k
HEADLINE_MODE = Mode.HYBRID
BASELINE = Path(__file__).resolve().parent / "baseline.json"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class EvalResult:
    """``rows``: one per (question, mode); ``summary``: mode -> group (a type, "answerable", "all") -> metric."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, dict[str, float]]]
    latency_ms: dict[str, dict[str, float]]
    settings: dict[str, Any] = field(default_factory=dict)
    judge: str = JUDGE
    judge_stats: dict[str, int] = field(default_factory=dict)  # an LLM judge's calls / yes / no / malformed replies
    modes: tuple[str, ...] = ("hybrid",)
    extractive: bool = True
    elapsed_s: float = 0.0
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _settings_summary(assistant: Assistant) -> dict[str, Any]:
    s = assistant.settings

    def clean(d: dict[str, Any]) -> dict[str, Any]:
        secret = ("key", "token", "secret", "password")
        return {k: v for k, v in d.items() if not any(w in k.lower() for w in secret)}

    return {
        "retrieval": clean(s.retrieval.model_dump(mode="json")),
        "embedding": clean(s.embedding.model_dump(mode="json")),
        "chunking": clean(s.chunking.model_dump(mode="json")),
        "llm": {"provider": s.llm.provider, "model": s.llm.model},
        "store_count": _safe_count(assistant),
    }


def _safe_count(assistant: Assistant) -> int | None:
    try:
        return int(assistant.retriever.store.count())
    except Exception:  # a store without count(): not worth failing a run for
        return None


def _ask_row(
    assistant: Assistant,
    q: EvalQuestion,
    mode: str,
    extractive: bool,
    history: list[Turn],
    judge: Judge,
    slice_of: Callable[[EvalQuestion], str],
) -> tuple[dict[str, Any], Answer]:
    t0 = time.perf_counter()
    answer = assistant.ask(q.question, mode=mode, history=history, extractive=extractive)  # type: ignore[arg-type]
    latency = (time.perf_counter() - t0) * 1000
    hits = assistant.retrieve(answer.query, k=RETRIEVE_K, mode=mode)  # type: ignore[arg-type]
    dense = [h.dense_score for h in hits if h.dense_score is not None]
    cited = [c.paper_id for c in answer.citations]
    cites = citation_scores(answer, judge)
    recall = gold_citation_recall(q.gold, cited) if q.answerable else math.nan
    single = q.answerable and len(q.gold) == 1 and bool(cited)
    row: dict[str, Any] = {
        "id": q.id,
        "type": q.type,
        "slice": slice_of(q),
        "split": q.split,
        "mode": mode,
        "question": q.question,
        "history": list(q.history),
        "query": answer.query,
        "gold": list(q.gold),
        "answerable": q.answerable,
        "refused": answer.refused,
        "outcome": answer.outcome,
        "expected": list(q.expected),
        "honest": answer.outcome in q.expected,
        "missing": answer.missing,
        "refusal_reason": answer.refusal_reason,
        "cited": cited,
        "retrieved": [h.paper_id for h in hits],
        "top_similarity": max(dense) if dense else None,
        "gold_citation_recall": recall,
        "cites_gold": bool(set(cited) & set(q.gold)),
        # one-paper questions: the share of cited papers that are the gold one (padding lowers it)
        "cited_precision": sum(c in q.gold for c in cited) / len(cited) if single else math.nan,
        "fact_hit": must_contain_hit(answer.text, q.must_contain) if q.must_contain else None,
        "citations_valid": citations_valid(answer),
        "alce_citation_recall": cites.recall,
        "alce_citation_precision": cites.precision,
        "flags": list(answer.flags),
        "latency_ms": latency,
        "answer": answer.text,
    }
    return row, answer


def run_eval(
    assistant: Assistant,
    questions: Sequence[EvalQuestion],
    modes: Sequence[str] = ("hybrid",),
    *,
    extractive: bool = True,
    progress: Callable[[str], None] | None = None,
    judge: Judge | None = None,
) -> EvalResult:
    """Ask every question in every retrieval mode (extractive answers by default: no LLM, deterministic).
    ``judge`` decides support for the ALCE citation scores (default: the lexical judge)."""
    judge = judge or LexicalJudge()
    slice_of = _slicer(questions)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for mode in modes:
        for q in questions:
            history: list[Turn] = []
            for earlier in q.history:  # replay the conversation so the follow-up is rewritten as in the UI
                past = assistant.ask(earlier, mode=mode, history=history, extractive=extractive)  # type: ignore[arg-type]
                history.append(Turn(earlier, past))
            row, _ = _ask_row(assistant, q, mode, extractive, history, judge, slice_of)
            rows.append(row)
            if progress:
                progress(f"{mode} {q.id}")
        mode_rows = [r for r in rows if r["mode"] == mode]
        per_query = retrieval_scores(
            {r["id"]: r["gold"] for r in mode_rows}, {r["id"]: r["retrieved"] for r in mode_rows}
        )
        for r in mode_rows:
            r.update(per_query.get(r["id"], dict.fromkeys(RETRIEVAL_METRICS)))
    summary = {mode: summarize([r for r in rows if r["mode"] == mode]) for mode in modes}
    latency = {
        mode: {
            "p50": percentile([r["latency_ms"] for r in rows if r["mode"] == mode], 50),
            "p95": percentile([r["latency_ms"] for r in rows if r["mode"] == mode], 95),
            "mean": mean(r["latency_ms"] for r in rows if r["mode"] == mode),
        }
        for mode in modes
    }
    return EvalResult(
        rows=rows,
        summary=summary,
        latency_ms=latency,
        settings=_settings_summary(assistant),
        judge=judge.name,
        judge_stats=dict(getattr(judge, "stats", {})),
        modes=tuple(modes),
        extractive=extractive,
        elapsed_s=time.perf_counter() - start,
        commit=git_commit(),
    )


def _slicer(questions: Sequence[EvalQuestion]) -> Callable[[EvalQuestion], str]:
    """own_words questions -> their vocabulary slice; others -> their type."""
    if not any(q.type == "own_words" for q in questions):
        return lambda q: q.type
    from evals.protocol import bundled_checker

    checker = bundled_checker()
    return lambda q: f"own_words: {checker.vocabulary_slice(q.question, q.gold)}" if q.type == "own_words" else q.type


def _group(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {"n": float(len(rows))}
    answerable = [r for r in rows if r["answerable"]]
    for m in RETRIEVAL_METRICS:
        out[m] = mean(r.get(m) for r in answerable)
    out["gold_citation_recall"] = mean(r["gold_citation_recall"] for r in answerable)
    out["cites_gold_rate"] = mean(float(r["cites_gold"]) for r in answerable)
    out["fact_hit_rate"] = mean(float(r["fact_hit"]) for r in rows if r["fact_hit"] is not None)
    out["refusal_rate"] = mean(float(r["refused"]) for r in rows)
    out["partial_rate"] = mean(float(r["outcome"] == "partial") for r in rows)
    out["honest_rate"] = mean(float(r["honest"]) for r in rows)  # outcome is one this question expects
    out["cited_precision"] = mean(r.get("cited_precision") for r in answerable)
    out["citation_validity"] = mean(float(r["citations_valid"]) for r in rows if not r["refused"])
    out["alce_citation_recall"] = mean(r["alce_citation_recall"] for r in rows)
    out["alce_citation_precision"] = mean(r["alce_citation_precision"] for r in rows)
    out["latency_p50_ms"] = percentile([r["latency_ms"] for r in rows], 50)
    out["latency_p95_ms"] = percentile([r["latency_ms"] for r in rows], 95)
    return out


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Metrics per question type, for all answerable questions, and overall (with the refusal scores)."""
    groups: dict[str, dict[str, float]] = {}
    for t in TYPES:
        of_type = [r for r in rows if r["type"] == t]
        if of_type:
            groups[t] = _group(of_type)
        if t == "own_words":
            for name in OWN_WORDS_SLICES:
                in_slice = [r for r in rows if r.get("slice") == name]
                if in_slice:
                    groups[name] = _group(in_slice)
    groups["answerable"] = _group([r for r in rows if r["answerable"]])
    overall = _group(rows)
    # A near miss counts as handled when it is flagged (partial or refused); an answerable question is falsely
    # refused only when refused (a partial answer still cites the paper).
    flagged = [
        (r["answerable"], r["refused"] if r["answerable"] else r["outcome"] != "answered", r["cites_gold"])
        for r in rows
    ]
    overall.update(asdict(refusal_scores(flagged)))
    groups["all"] = overall
    return groups


def headline(result: EvalResult, mode: str = HEADLINE_MODE) -> dict[str, float]:
    """The numbers the regression gate watches (all higher-is-better): nDCG@10 per answerable type and own-words
    slice, refusal accuracy, gold citation recall and cited precision (answerable questions), the fact hit rate,
    and the share of honest outcomes per kind (answered for answerable, flagged for near misses, refused for
    off-topic)."""
    s = result.summary[mode]
    out = {f"{mode}.ndcg@10.{t}": s[t]["ndcg@10"] for t in (*ANSWERABLE_TYPES, *OWN_WORDS_SLICES) if t in s}
    out[f"{mode}.refusal_accuracy"] = s["all"]["refusal_accuracy"]
    out[f"{mode}.gold_citation_recall"] = s["answerable"]["gold_citation_recall"]
    out[f"{mode}.cited_precision"] = s["answerable"]["cited_precision"]
    out[f"{mode}.honest.answerable"] = s["answerable"]["honest_rate"]
    for t in ("near_miss", "unanswerable_offtopic", "unanswerable_absent"):
        if t in s:
            out[f"{mode}.honest.{t}"] = s[t]["honest_rate"]
    if "fact" in s:
        out[f"{mode}.fact_hit_rate"] = s["fact"]["fact_hit_rate"]
    return {k: round(v, 4) for k, v in out.items() if not math.isnan(v)}


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.0f}" if v >= 100 or v.is_integer() else f"{v:.3f}"
    return str(v)


def _table(summary: dict[str, dict[str, float]], metrics: Sequence[str]) -> list[str]:
    lines = ["| group | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for group, vals in summary.items():
        lines.append(f"| {group} | " + " | ".join(_fmt(vals.get(m)) for m in metrics) + " |")
    return lines


def report_markdown(result: EvalResult, plots: Sequence[str] = ()) -> str:
    lines = [
        "# Eval report",
        "",
        f"- questions × modes: {len(result.rows)} ({', '.join(result.modes)}); "
        f"{'extractive' if result.extractive else 'LLM'} answers",
        f"- judge: {result.judge} ({_judge_note(result)})",
        f"- commit: {result.commit or 'unknown'}; wall time {result.elapsed_s:.1f} s",
        "",
    ]
    for mode in result.modes:
        s = result.summary[mode]
        lat = result.latency_ms[mode]
        lines += [f"## {mode}", "", f"Latency per question: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms.", ""]
        lines += ["### Retrieval (answerable questions)", ""]
        lines += _table({g: v for g, v in s.items() if g in ANSWERABLE_TYPES or g == "answerable"}, RETRIEVAL_METRICS)
        lines += ["", "### Answers", ""]
        answer_metrics = [
            "n",
            "gold_citation_recall",
            "cites_gold_rate",
            "fact_hit_rate",
            "refusal_rate",
            "partial_rate",
            "honest_rate",
            "cited_precision",
            "citation_validity",
            "alce_citation_recall",
            "alce_citation_precision",
            "latency_p50_ms",
        ]
        lines += _table(s, answer_metrics)
        a = s["all"]
        lines += [
            "",
            "### Refusals (answerable vs unanswerable)",
            "",
            f"- refusal accuracy {_fmt(a['refusal_accuracy'])}, precision {_fmt(a['refusal_precision'])}, "
            f"recall {_fmt(a['refusal_recall'])}, false-refusal rate {_fmt(a['false_refusal_rate'])}",
            f"- answer precision (correct / answered) {_fmt(a['answer_precision'])}, "
            f"accuracy (correct / asked) {_fmt(a['answer_accuracy'])}",
            "",
        ]
        misses = [r for r in result.rows if r["mode"] == mode and r["answerable"] and not r["cites_gold"]]
        wrong_answers = [r for r in result.rows if r["mode"] == mode and not r["answerable"] and not r["refused"]]
        if misses or wrong_answers:
            lines += ["### Failures", ""]
            for r in misses:
                why = "refused" if r["refused"] else "gold not cited"
                lines.append(f"- `{r['id']}` ({r['type']}, {why}): {r['question']}")
            for r in wrong_answers:
                lines.append(f"- `{r['id']}` ({r['type']}, answered instead of refusing): {r['question']}")
            lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _judge_note(result: EvalResult) -> str:
    if result.judge.startswith("lexical-support@"):
        return "rag.citations.support >= threshold as an offline ALCE-style judge: a lexical proxy, not NLI"
    stats = ", ".join(f"{k} {v}" for k, v in result.judge_stats.items())
    return f"the configured LLM answering yes/no per (statement, cited abstracts){'; ' + stats if stats else ''}"


def write_plots(result: EvalResult, out_dir: Path) -> list[str]:
    """PNG plots next to the report; [] when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    names: list[str] = []
    groups = [t for t in TYPES if t in result.summary[result.modes[0]]]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / max(1, len(result.modes))
    for i, mode in enumerate(result.modes):
        s = result.summary[mode]
        vals = [s[g]["ndcg@10"] if g in ANSWERABLE_TYPES else s[g]["refusal_rate"] for g in groups]
        ax.bar(
            [x + i * width for x in range(len(groups))], [0 if math.isnan(v) else v for v in vals], width, label=mode
        )
    ax.set_xticks([x + width * (len(result.modes) - 1) / 2 for x in range(len(groups))])
    ax.set_xticklabels([g.replace("unanswerable_", "unans_") for g in groups], rotation=20)
    ax.set_ylabel("nDCG@10 (answerable) / refusal rate (unanswerable)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "metric_by_type.png", dpi=100)
    plt.close(fig)
    names.append("metric_by_type.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for mode in result.modes:
        ax.hist([r["latency_ms"] for r in result.rows if r["mode"] == mode], bins=30, alpha=0.6, label=mode)
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png", dpi=100)
    plt.close(fig)
    names.append("latency.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    mode = result.modes[0]
    for label, answerable in (("answerable", True), ("unanswerable", False)):
        sims = [
            r["top_similarity"]
            for r in result.rows
            if r["mode"] == mode and r["answerable"] == answerable and r["top_similarity"] is not None
        ]
        ax.hist(sims, bins=25, alpha=0.6, label=label)
    ax.set_xlabel(f"top dense similarity ({mode})")
    ax.set_ylabel("questions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "top_similarity.png", dpi=100)
    plt.close(fig)
    names.append("top_similarity.png")
    return names


def write_results(result: EvalResult, out_dir: Path, plots: bool = True) -> Path:
    """results.json (rows, summary, settings, commit, judge), report.md and PNG plots in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = json_safe(result.to_dict())
    (out_dir / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    names = write_plots(result, out_dir) if plots else []
    (out_dir / "report.md").write_text(report_markdown(result, names), encoding="utf-8")
    return out_dir


def load_result(path: Path) -> EvalResult:
    """An EvalResult back from results.json (or its directory)."""
    if path.is_dir():
        path = path / "results.json"
    d = json.loads(path.read_text(encoding="utf-8"))

    def nan(v: Any) -> Any:
        if v is None:
            return math.nan
        if isinstance(v, dict):
            return {k: nan(x) for k, x in v.items()}
        return v

    return EvalResult(
        rows=d["rows"],
        summary=nan(d["summary"]),
        latency_ms=d["latency_ms"],
        settings=d.get("settings", {}),
        judge=d.get("judge", JUDGE),
        judge_stats=d.get("judge_stats", {}),
        modes=tuple(d.get("modes", ("hybrid",))),
        extractive=d.get("extractive", True),
        elapsed_s=d.get("elapsed_s", 0.0),
        commit=d.get("commit"),
    )


def compare(
    run_a: EvalResult, run_b: EvalResult, metric: str = "ndcg@10", mode_a: str = "hybrid", mode_b: str | None = None
) -> dict[str, float]:
    """Paired comparison of one per-question metric on the questions both runs answered (B minus A).

    Returns the mean of A and B, the mean difference, a paired bootstrap-free Wilcoxon signed-rank p-value (0
    differences dropped; 1.0 when all pairs tie) and a paired t-test p-value."""
    from scipy import stats

    def values(result: EvalResult, mode: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in result.rows:
            v = r.get(metric)
            if r["mode"] == mode and v is not None and not (isinstance(v, float) and math.isnan(v)):
                out[r["id"]] = float(v)
        return out

    a = values(run_a, mode_a)
    b = values(run_b, mode_b or mode_a)
    ids = sorted(set(a) & set(b))
    xs = [a[i] for i in ids]
    ys = [b[i] for i in ids]
    diffs = [y - x for x, y in zip(xs, ys, strict=True)]
    if not ids:
        return {"n": 0.0, "mean_a": math.nan, "mean_b": math.nan, "diff": math.nan, "wilcoxon_p": math.nan}
    nonzero = [d for d in diffs if d != 0]
    wilcoxon_p = float(stats.wilcoxon(nonzero).pvalue) if nonzero else 1.0
    ttest_p = float(stats.ttest_rel(ys, xs).pvalue) if nonzero and len(ids) > 1 else 1.0
    return {
        "n": float(len(ids)),
        "mean_a": mean(xs),
        "mean_b": mean(ys),
        "diff": mean(diffs),
        "wilcoxon_p": wilcoxon_p,
        "ttest_p": ttest_p,
    }


def missing_eval_packages() -> list[str]:
    """The `eval` extra's packages that are not installed (a `make run` install has none of them)."""
    import importlib.util

    return [name for name in ("ranx", "matplotlib", "scipy", "sklearn") if importlib.util.find_spec(name) is None]


def main(argv: Sequence[str] | None = None, *, embedder: Any = None) -> int:
    """The CLI (also ``rag eval ARGS``). ``embedder``: an already loaded embedding model (tests share one)."""
    missing = missing_eval_packages()
    if missing:
        needs = f"rag eval needs the eval extra ({', '.join(missing)} missing)"
        print(f"{needs}: pip install -e '.[eval]'", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["dev", "test", "all"], default="test")
    parser.add_argument(
        "--dataset", type=Path, help="one question file (default: curated + own words + honesty, evals/datasets)"
    )
    parser.add_argument(
        "--modes", default=None, help="hybrid,dense,bm25,rrf (default hybrid; --beir: bm25,dense,hybrid)"
    )
    parser.add_argument("--out", type=Path, help="write results.json, report.md and plots here")
    parser.add_argument("--data-dir", type=Path, help="index location (default: the settings' data_dir)")
    parser.add_argument("--fresh-index", action="store_true", help="ingest the bundled corpus into a temp dir")
    parser.add_argument("--llm", action="store_true", help="use the configured LLM instead of extractive answers")
    parser.add_argument(
        "--judge", choices=JUDGES, default="lexical", help="ALCE support judge: lexical (offline) or llm (configured)"
    )
    parser.add_argument(
        "--judge-threshold", type=float, default=DEFAULT_THRESHOLD, help="lexical judge threshold (calibrated: 0.4)"
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--write-baseline", type=Path, help="write the headline metrics (test split) as JSON")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), help="compare two results")
    parser.add_argument("--metric", default="ndcg@10", help="per-question metric for --compare")
    parser.add_argument(
        "--beir", type=Path, metavar="DIR", help="score retrieval on a BEIR dataset dir instead (own collection)"
    )
    parser.add_argument("--beir-split", default="test", help="qrels/<split>.tsv of the BEIR dataset (default: test)")
    parser.add_argument(
        "--from-feedback",
        type=Path,
        metavar="FEEDBACK_JSONL",
        help="turn UI feedback into candidate eval rows (written to --out, a .jsonl file)",
    )
    parser.add_argument(
        "--redteam", action="store_true", help="run the red-team set (planted instructions; evals.redteam) instead"
    )
    parser.add_argument("--llm-base-url", help="--redteam: answer with this OpenAI-compatible server (else extractive)")
    parser.add_argument("--llm-model", default="smollm2", help="--redteam: the model name sent to --llm-base-url")
    args = parser.parse_args(argv)

    if args.redteam:
        from evals.redteam import redteam_main

        redteam_main(args.out, args.llm_base_url, args.llm_model, args.data_dir, embedder)
        return 0

    if args.compare:
        res = compare(load_result(args.compare[0]), load_result(args.compare[1]), args.metric)
        print(json.dumps(json_safe(res), indent=2))
        return 0

    if args.from_feedback:
        from evals.feedback_cases import feedback_main

        if not args.out:
            parser.error("--from-feedback needs --out CANDIDATES.jsonl")
        return feedback_main(args.from_feedback, args.out)

    if args.beir:
        from evals.beir import BEIR_MODES, beir_main
        from evals.data import DatasetError

        modes = _modes(args.modes) if args.modes else list(BEIR_MODES)
        try:
            beir_main(
                args.beir, split=args.beir_split, modes=modes, out=args.out, data_dir=args.data_dir, embedder=embedder
            )
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    from rag.settings import Settings

    split = None if args.split == "all" else args.split
    questions = load_questions(args.dataset, split) if args.dataset else load_all(split)
    validate(questions, corpus_ids())
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
        if args.fresh_index:
            settings = Settings(data_dir=Path(tmp))
        elif args.data_dir:
            settings = Settings(data_dir=args.data_dir)
        else:
            settings = Settings()
        try:
            judge = build_judge(args.judge, settings.llm, args.judge_threshold)
        except (JudgeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        assistant = Assistant.open(settings, embedder=embedder)
        result = run_eval(assistant, questions, _modes(args.modes or "hybrid"), extractive=not args.llm, judge=judge)
    for mode in result.modes:
        print(f"[{mode}]")
        for group, vals in result.summary[mode].items():
            print(
                f"  {group:24s} n={vals['n']:.0f} ndcg@10={_fmt(vals['ndcg@10'])} "
                f"gold_cit_recall={_fmt(vals['gold_citation_recall'])} refusal_rate={_fmt(vals['refusal_rate'])} "
                f"fact_hit={_fmt(vals['fact_hit_rate'])} alce={_fmt(vals['alce_citation_recall'])}/"
                f"{_fmt(vals['alce_citation_precision'])}"
            )
        lat = result.latency_ms[mode]
        print(f"  latency p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms")
    print(f"{len(result.rows)} questions in {result.elapsed_s:.1f} s; judge {result.judge}")
    if args.out:
        write_results(result, args.out, plots=not args.no_plots)
        print(f"wrote {args.out}/results.json and {args.out}/report.md")
    if args.write_baseline:
        if args.split != "test" or args.llm or args.judge != "lexical":
            parser.error("--write-baseline needs --split test in extractive mode with the lexical judge")
        base = {
            "split": "test",
            "extractive": True,
            "judge": result.judge,
            "commit": result.commit,
            "n_questions": len(questions),
            "metrics": headline(result),
        }
        args.write_baseline.write_text(json.dumps(json_safe(base), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.write_baseline}")
    return 0


def _modes(spec: str) -> list[str]:
    return [m.strip() for m in spec.split(",") if m.strip()]


if __name__ == "__main__":
    sys.exit(main())
