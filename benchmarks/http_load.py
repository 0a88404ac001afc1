"""`rag serve` under load: N concurrent clients (the official openai client) for S seconds on the bundled index.
Each client keeps its own two-turn conversation going (a question, then a follow-up with the first reply as
history); every reply is compared with what the Assistant answers to the same turn alone, so cross-talk between
conversations would show up as a wrong answer. Prints latency percentiles; the numbers are in docs/api.md.

.venv/bin/python benchmarks/http_load.py [--clients 20] [--seconds 30] [--data-dir .rag]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FOLLOW_UP = "Which datasets or tasks did they evaluate on?"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[int(p * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".rag")
    args = parser.parse_args()

    import uvicorn
    from openai import OpenAI

    from app.http_api import build_api
    from app.openai_chat import ChatMessageIn, question_and_history
    from app.serve import open_for_serving
    from rag.settings import ServeSettings, Settings

    assistant = open_for_serving(Settings(data_dir=args.data_dir))
    questions = [json.loads(line)["question"] for line in (ROOT / "evals/datasets/dev_paraphrase.jsonl").open()]
    questions = questions[: args.clients]
    expected: dict[tuple[str, str], str] = {}
    for q in questions:  # what each turn gets alone, asked the way the API asks it
        first = assistant.ask(q)
        expected[(q, "")] = first.text
        history = [
            ChatMessageIn(role="user", content=q),
            ChatMessageIn(role="assistant", content=first.to_markdown(question=False)),
            ChatMessageIn(role="user", content=FOLLOW_UP),
        ]
        follow, turns = question_and_history(history)
        expected[(q, FOLLOW_UP)] = assistant.ask(follow, history=turns).text

    server = uvicorn.Server(uvicorn.Config(build_api(assistant, ServeSettings()), port=0, log_level="warning"))
    server.config.port = _free_port()
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    client = OpenAI(base_url=f"http://127.0.0.1:{server.config.port}/v1", api_key="unused", max_retries=0, timeout=120)

    latencies: list[float] = []
    wrong: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def converse(q: str) -> None:
        while time.monotonic() < stop:
            messages: list[dict[str, Any]] = [{"role": "user", "content": q}]
            content = ""
            for turn in ("", FOLLOW_UP):
                if turn:
                    messages += [{"role": "assistant", "content": content}, {"role": "user", "content": turn}]
                t = time.perf_counter()
                try:
                    reply = client.chat.completions.create(model="paper-rag", messages=messages)  # type: ignore[arg-type]
                except Exception as exc:  # counted and shown: the point of a load run
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    return
                elapsed = (time.perf_counter() - t) * 1000
                content = reply.choices[0].message.content or ""
                text = (reply.model_extra or {})["answer"]["text"]
                with lock:
                    latencies.append(elapsed)
                    if text != expected[(q, turn)]:
                        wrong.append(f"{q!r} / {turn!r}")

    started = time.perf_counter()
    with ThreadPoolExecutor(len(questions)) as pool:
        list(pool.map(converse, questions))
    wall = time.perf_counter() - started
    server.should_exit = True
    n = len(latencies)
    print(
        f"{len(questions)} clients x {args.seconds:.0f} s: {n} requests ({n / wall:.1f}/s), "
        f"p50 {statistics.median(latencies):.0f} ms, p95 {pct(latencies, 0.95):.0f} ms, "
        f"max {max(latencies):.0f} ms; wrong answers {len(wrong)}, errors {len(errors)}"
    )
    for line in (wrong + errors)[:10]:
        print("  ", line)
    if wrong or errors:
        raise SystemExit(1)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
