"""Warm, in-process latency of `retrieve` and extractive `ask`, and cold `rag ask` from a new process.

.venv/bin/python benchmarks/answer_speed.py      # uses ./.rag (run `rag ingest` first); numbers in docs/benchmarks.md
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[int(p * (len(values) - 1))]


def main() -> None:
    from rag.assistant import Assistant
    from rag.settings import Settings

    questions = [json.loads(line)["question"] for line in (ROOT / "evals/datasets/dev_paraphrase.jsonl").open()]
    questions += [json.loads(line)["question"] for line in (ROOT / "evals/datasets/dev_unanswerable.jsonl").open()]
    assistant = Assistant.open(Settings(), ingest_if_empty=False)
    for q in questions[:5]:
        assistant.ask(q)  # warm-up (model, NLTK, BM25 load)
    for name, fn in (("retrieve", assistant.retrieve), ("extractive ask", assistant.ask)):
        times = []
        for q in questions:
            t = time.perf_counter()
            fn(q)
            times.append((time.perf_counter() - t) * 1000)
        p50, p95 = statistics.median(times), pct(times, 0.95)
        print(f"{name:16s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  ({len(times)} questions)")
    cold = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "app", "ask", questions[0]], capture_output=True, check=True, cwd=ROOT)
        cold.append(time.perf_counter() - t)
    print(f"cold `rag ask`   median {statistics.median(cold):.2f} s over 3 runs")


if __name__ == "__main__":
    main()
