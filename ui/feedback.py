"""Thumbs up/down on an answer, appended as one JSON line to ``<data_dir>/feedback.jsonl``.

A line holds the question, the searched query, the answer text, its citations, the vote and a UTC timestamp:
never settings, never an API key.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rag.answer import Answer

__all__ = ["Vote", "feedback_record", "record_feedback"]

Vote = Literal["up", "down"]
_LOCK = threading.Lock()


def feedback_record(answer: Answer, vote: Vote) -> dict[str, object]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "vote": vote,
        "question": answer.question,
        "query": answer.query,
        "answer": answer.text,
        "refused": answer.refused,
        "outcome": answer.outcome,
        "mode": answer.mode,
        "citations": [
            {"n": c.n, "paper_id": c.paper_id, "title": c.title, "quote": c.quote, "score": c.score}
            for c in answer.citations
        ],
    }


def record_feedback(path: Path, answer: Answer, vote: Vote) -> None:
    """Append one line (whole lines only: writers in other threads are serialised)."""
    line = json.dumps(feedback_record(answer, vote), ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, path.open("a", encoding="utf-8") as f:
        f.write(line)
