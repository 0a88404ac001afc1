"""Retrieval quality by mode and question kind (ranx: nDCG@10, recall@5) and warm `retrieve` latency.

    .venv/bin/python benchmarks/retrieval.py        # uses ./.rag (run `rag ingest` first); numbers in docs/retrieval.md

Question sets: 100 generated wording-reuse questions (evals/synthetic.py) and the 35 hand-written own-words
questions in evals/datasets/dev_paraphrase.jsonl. Both are dev sets: the fusion was chosen on them.
Modes: the four of `Retriever.retrieve`, plus "no-phrase": the hybrid fusion without the phrase evidence
(confidence-weighted z-scores only, the fusion before issue 3), for the before/after comparison.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from ranx import Qrels, Run, evaluate

    from evals.synthetic import wording_reuse_questions
    from ingest.dedup import dedup
    from ingest.formats import read_paths
    from rag.fusion import Hit, fold_to_papers, fuse_zscore
    from rag.retrieve import Retriever
    from rag.settings import Settings

    settings = Settings()
    retriever = Retriever.open(settings)
    papers = dedup(read_paths([settings.corpus_dir])[0].records)
    ids = [p.paper_id for p in papers]
    own = []
    for line in (
        (Path(__file__).resolve().parent.parent / "evals/datasets/dev_paraphrase.jsonl").read_text().splitlines()
    ):
        row = json.loads(line)
        (gold,) = [i for i in ids if i.startswith(row["gold_prefix"][0])]
        own.append((row["id"], row["question"], gold))
    wording = [(q.qid, q.text, q.gold[0]) for q in wording_reuse_questions(papers, 100)]

    def ranked(q: str, mode: str) -> list[Hit]:
        if mode != "no-phrase":
            return [Hit(h.chunk_id, h.paper_id, h.score) for h in retriever.retrieve(q, 10, mode)]  # type: ignore[arg-type]
        n = retriever.candidates
        return fold_to_papers(fuse_zscore(retriever.dense(q, n), retriever.bm25(q, n), depth=n))[:10]

    print(f"{'mode':9s} {'set':10s} {'nDCG@10':>8s} {'R@5':>6s}")
    for mode in ("bm25", "dense", "rrf", "no-phrase", "hybrid"):
        for name, questions in (("wording", wording), ("own-words", own)):
            qrels = Qrels({qid: {gold: 1} for qid, _, gold in questions})
            run = Run({qid: {h.paper_id: h.score for h in ranked(q, mode)} for qid, q, _ in questions})
            m = evaluate(qrels, run, ["ndcg@10", "recall@5"])
            print(f"{mode:9s} {name:10s} {m['ndcg@10']:8.3f} {m['recall@5']:6.3f}")
    queries = [q for _, q, _ in wording + own]
    for q in queries[:10]:
        retriever.retrieve(q, 10)  # warm-up
    times = []
    for q in queries:
        t = time.perf_counter()
        retriever.retrieve(q, 10)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"hybrid retrieve latency over {len(times)} queries: p50 {statistics.median(times):.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
