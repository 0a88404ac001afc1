"""Ablations on the curated set (dev and test splits, bundled corpus, extractive answers): one knob at a time.

    python -m evals.ablations --out ablations-out                 # ~10 min on 2 cores (3 ingests of ~40 s)
    python -m evals.ablations --out ablations-out --data-dir .rag --no-chunking

Sweeps, everything else at the defaults (hybrid, k=6, min_similarity=0.2, 256-piece chunks with the title):

- retrieval mode: bm25, dense, rrf, hybrid;
- k (papers shown to the answerer): 3, 6, 10;
- refusal threshold ``retrieval.min_similarity``: 0.15, 0.2, 0.25, 0.3;
- chunking (a fresh index per variant): max_tokens 256 vs 128, title prefix on vs off; modes bm25, dense, hybrid.

Retrieval metrics (nDCG@10, recall@5, MRR@10) rank 10 papers whatever k is, so they move only with the mode and
the chunking; k and the threshold move the answer and refusal metrics. Writes ablations.md and ablations.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.data import EvalQuestion, load_questions
from evals.provenance import git_commit, json_safe
from evals.run import EvalResult, run_eval
from rag.types import Mode

__all__ = ["COLUMNS", "ablation_rows", "main", "markdown"]

MODES: tuple[Mode, ...] = (Mode.BM25, Mode.DENSE, Mode.RRF, Mode.HYBRID)
KS: tuple[int, ...] = (3, 6, 10)
MIN_SIMILARITIES: tuple[float, ...] = (0.15, 0.2, 0.25, 0.3)
CHUNKINGS: tuple[tuple[int, bool], ...] = ((256, True), (128, True), (256, False))  # (max_tokens, prefix_title)
CHUNK_MODES: tuple[Mode, ...] = (Mode.BM25, Mode.DENSE, Mode.HYBRID)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    # (header, summary group, metric)
    ("nDCG@10", "answerable", "ndcg@10"),
    ("R@5", "answerable", "recall@5"),
    ("MRR@10", "answerable", "mrr@10"),
    ("gold cit. recall", "answerable", "gold_citation_recall"),
    ("fact hit", "fact", "fact_hit_rate"),
    ("refusal acc.", "all", "refusal_accuracy"),
    ("unans. refused", "all", "refusal_recall"),
    ("false refusals", "all", "false_refusal_rate"),
    ("ALCE R / P", "all", "alce"),
    ("p50 ms", "all", "latency_p50_ms"),
)


def _row(sweep: str, variant: str, split: str, result: EvalResult, mode: str) -> dict[str, Any]:
    s = result.summary[mode]
    row: dict[str, Any] = {"sweep": sweep, "variant": variant, "split": split, "n": int(s["all"]["n"])}
    for header, group, metric in COLUMNS:
        vals = s.get(group, {})
        if metric == "alce":
            row[header] = [vals.get("alce_citation_recall"), vals.get("alce_citation_precision")]
        else:
            row[header] = vals.get(metric)
    return row


def _variant(assistant: Any, **retrieval: Any) -> Any:
    """The same index and clients with other retrieval settings (k, min_similarity)."""
    from rag.assistant import Assistant

    s = assistant.settings
    settings = s.model_copy(update={"retrieval": s.retrieval.model_copy(update=retrieval)})
    return Assistant(settings, assistant.retriever, None)


def ablation_rows(
    assistant: Any,
    questions: Mapping[str, Sequence[EvalQuestion]],
    chunked: Sequence[tuple[str, Any]] = (),
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows for every sweep and split. ``chunked``: (label, assistant on a re-chunked index) per chunking variant."""
    say = progress or (lambda _: None)
    rows: list[dict[str, Any]] = []
    for split, qs in questions.items():
        say(f"{split}: modes")
        result = run_eval(assistant, qs, MODES)
        rows += [_row("mode", m, split, result, m) for m in MODES]
        for k in KS:
            say(f"{split}: k={k}")
            rows.append(_row("k", f"k={k}", split, run_eval(_variant(assistant, k=k), qs), "hybrid"))
        for t in MIN_SIMILARITIES:
            say(f"{split}: min_similarity={t}")
            result = run_eval(_variant(assistant, min_similarity=t), qs)
            rows.append(_row("min_similarity", f"min_similarity={t:g}", split, result, "hybrid"))
        for label, chunk_assistant in chunked:
            say(f"{split}: chunking {label}")
            result = run_eval(chunk_assistant, qs, CHUNK_MODES)
            rows += [_row("chunking", f"{label}, {m}", split, result, m) for m in CHUNK_MODES]
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return " / ".join(_fmt(x) for x in v)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.0f}" if v >= 10 else f"{v:.3f}"
    return str(v)


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    headers = [h for h, _, _ in COLUMNS]
    out: list[str] = []
    for sweep in dict.fromkeys(r["sweep"] for r in rows):
        out += [f"### {sweep}", "", "| variant | split | n | " + " | ".join(headers) + " |"]
        out.append("|---|---|---|" + "---|" * len(headers))
        for split in ("dev", "test"):
            for r in rows:
                if r["sweep"] == sweep and r["split"] == split:
                    cells = " | ".join(_fmt(r[h]) for h in headers)
                    out.append(f"| {r['variant']} | {split} | {r['n']} | {cells} |")
        out.append("")
    return "\n".join(out)


def _open(settings: Any, embedder: Any) -> Any:
    from ingest.pipeline import Ingestor
    from rag.assistant import Assistant
    from rag.store import open_store

    store = open_store(settings)
    if store.count() == 0:
        Ingestor(settings, store, embedder).ingest_paths([settings.corpus_dir])
    return Assistant.open(settings, store=store, embedder=embedder, ingest_if_empty=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.ablations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="write ablations.md and ablations.json here")
    parser.add_argument("--data-dir", type=Path, help="the default index (default: a fresh one in a temp dir)")
    parser.add_argument("--splits", default="dev,test")
    parser.add_argument("--no-chunking", action="store_true", help="skip the re-chunked indexes (~40 s each)")
    args = parser.parse_args(argv)

    from rag.embeddings import build_embedder
    from rag.settings import Settings

    start = time.perf_counter()
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    questions = {s: load_questions(split=s) for s in splits}  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="rag-ablations-") as tmp:
        base = Settings(data_dir=args.data_dir or Path(tmp) / "default")
        embedder = build_embedder(base.embedding, base.models_dir)
        assistant = _open(base, embedder)
        chunked: list[tuple[str, Any]] = []
        for max_tokens, prefix in CHUNKINGS if not args.no_chunking else ():
            label = f"{max_tokens} pieces, title {'on' if prefix else 'off'}"
            if (max_tokens, prefix) == (base.chunking.max_tokens, base.chunking.prefix_title):
                chunked.append((label, assistant))
                continue
            print(f"indexing: {label}", file=sys.stderr)
            chunking = base.chunking.model_copy(update={"max_tokens": max_tokens, "prefix_title": prefix})
            variant = base.model_copy(
                update={"data_dir": Path(tmp) / f"chunk-{max_tokens}-{prefix}", "chunking": chunking}
            )
            chunked.append((label, _open(variant, embedder)))
        rows = ablation_rows(assistant, questions, chunked, lambda m: print(m, file=sys.stderr))
    md = markdown(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablations.md").write_text(md, encoding="utf-8")

    meta = {"commit": git_commit(), "elapsed_s": time.perf_counter() - start, "rows": rows}
    (args.out / "ablations.json").write_text(json.dumps(json_safe(meta), indent=2) + "\n", encoding="utf-8")
    print(md)
    print(f"wrote {args.out}/ablations.md and ablations.json in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
