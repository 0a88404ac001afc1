"""What the optional rerank stage costs per query (docs/retrieval.md, "Stronger models and reranking").

    .venv/bin/python benchmarks/rerank_cost.py --tiny-cross-encoder                  # the test's random tiny BERT
    .venv/bin/python benchmarks/rerank_cost.py --cross-encoder /models/ms-marco-MiniLM-L-6-v2
    .venv/bin/python benchmarks/rerank_cost.py --llm-base-url http://127.0.0.1:8080/v1 --llm-model smollm2

Runs the first ``--questions`` own-words dev questions through hybrid retrieval over the bundled index, once
without and once with the stage (top ``--top-n`` papers), and prints the median and p90 of the stage's own time
(``Retrieval.rerank_ms``) and of the whole ``search``. Quality is not measured here: a random cross-encoder has
none, and SmolLM2-135M is a plumbing stand-in; measure a real judge with benchmarks/own_words.py-style runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"p50 {statistics.median(ordered):7.1f} ms, p90 {p90:7.1f} ms"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="an existing index of the bundled corpus (default: build one)")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--cross-encoder", type=Path, help="a local CrossEncoder directory")
    parser.add_argument("--tiny-cross-encoder", action="store_true", help="build the tests' tiny random BERT")
    parser.add_argument("--llm-base-url", help="an OpenAI-compatible chat server: the LLM judge")
    parser.add_argument("--llm-model", default="smollm2")
    parser.add_argument("--llm-timeout", type=float, default=300.0, help="seconds per LLM request (no retries)")
    parser.add_argument("--passage-chars", type=int, default=600, help="LLM judge: characters per candidate")
    parser.add_argument("--threads", default="0", help="cross-encoder torch threads to try, e.g. 0,1 (0: default)")
    args = parser.parse_args(argv)

    from evals.data import load_questions, own_words_files
    from rag.assistant import Assistant
    from rag.llms import build_llm
    from rag.rerank import CrossEncoderReranker, LLMReranker
    from rag.settings import LLMSettings, Settings

    tmp = Path(tempfile.mkdtemp(prefix="rerank-cost-"))
    settings = Settings(data_dir=args.data_dir or tmp / "rag")
    assistant = Assistant.open(settings)
    questions = [q.question for f in own_words_files() for q in load_questions(f, split="dev")][: args.questions]
    judges: dict[str, object] = {}
    threads = [int(n) for n in args.threads.split(",")]
    if args.tiny_cross_encoder:
        from tests.fakes import write_tiny_cross_encoder

        tiny = write_tiny_cross_encoder(tmp / "tiny-ce")
        for n in threads:
            judges[f"cross-encoder (tiny random BERT), threads {n}"] = CrossEncoderReranker(tiny, threads=n)
    if args.cross_encoder:
        for n in threads:
            judges[f"cross-encoder {args.cross_encoder.name}, threads {n}"] = CrossEncoderReranker(
                args.cross_encoder, threads=n
            )
    if args.llm_base_url:
        cfg = LLMSettings(
            provider="openai-compatible",
            base_url=args.llm_base_url,
            model=args.llm_model,
            max_tokens=64,
            timeout=args.llm_timeout,
            max_retries=0,
        )
        llm = build_llm(cfg)
        assert llm is not None
        judges[f"LLM {args.llm_model}, {args.passage_chars} chars"] = LLMReranker(llm, args.passage_chars)

    retriever = assistant.retriever
    retriever.rerank_top_n = args.top_n
    for q in questions[:2]:  # warm: model loads, caches
        retriever.search(q, k=6)
    plain = []
    for q in questions:
        t0 = time.perf_counter()
        retriever.search(q, k=6)
        plain.append((time.perf_counter() - t0) * 1000)
    print(f"top {args.top_n} reranked", file=sys.stderr)
    print(f"{'no rerank':40s} search {_quantiles(plain)}  ({len(questions)} own-words dev questions)")
    for name, judge in judges.items():
        retriever.reranker = judge  # type: ignore[assignment]
        if isinstance(judge, CrossEncoderReranker):
            import torch

            torch.set_num_threads(judge.threads or os.cpu_count() or 1)  # per process: set for each judge
        retriever.search(questions[0], k=6)  # load the model
        stage, total, failed = [], [], 0
        for q in questions:
            t0 = time.perf_counter()
            found = retriever.search(q, k=6)
            total.append((time.perf_counter() - t0) * 1000)
            stage.append(found.rerank_ms or 0.0)
            failed += bool(found.notes)
        print(f"{name:40s} stage  {_quantiles(stage)}; search {_quantiles(total)}; fell back {failed}/{len(questions)}")
    retriever.reranker = None


if __name__ == "__main__":
    main()
