"""The optional rerank stage: re-order the top papers after fusion with a stronger, slower judge. Off by default.

>>> reranker = build_reranker(settings.rerank, llm)     # None when rerank.provider = "none"
>>> hits, note = rerank(reranker, query, hits, top_n=20, passage=lambda h: f"{h.title}\\n{h.best_chunk}")

Two judges, one ``Reranker`` seam (rag.protocols):
- ``CrossEncoderReranker``: a local sentence-transformers ``CrossEncoder`` directory scores each (question,
  passage) pair (torch and sentence-transformers are imported on first use only);
- ``LLMReranker``: the configured chat LLM is asked for the candidates' numbers, most relevant first (listwise,
  as RankGPT does); numbers it leaves out keep their fused order after the ones it names.

A judge that fails (an exception, a timeout, an unreachable server, a reply without a usable number, scores of the
wrong length) never fails the question: ``rerank`` returns the fused ranking unchanged with a note saying why,
which the Assistant shows among the answer's flags.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rag.protocols import ChatModel, Reranker
from rag.settings import CONFIGURE_LLM, RerankSettings
from rag.text_normalize import one_line

__all__ = ["CrossEncoderReranker", "LLMReranker", "RerankError", "build_reranker", "parse_ranking", "rerank"]

_T = TypeVar("_T")
_NUMBER = re.compile(r"\d+")


class RerankError(RuntimeError):
    """A judge's output was unusable (``str(error)`` is one line fit to show the user)."""


class CrossEncoderReranker:
    """A local sentence-transformers ``CrossEncoder``: one relevance logit per (query, passage) pair."""

    def __init__(self, model_path: Path | None, batch_size: int = 16, threads: int = 0) -> None:
        from rag.st_embedding import check_model_dir

        if batch_size <= 0 or threads < 0:
            raise ValueError("batch_size must be positive and threads not negative")
        self.model_path = check_model_dir(model_path, "RAG_RERANK__MODEL_PATH")
        self.batch_size = batch_size
        self.threads = threads
        self.name = f"cross-encoder {self.model_path.name}"
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                from rag.st_embedding import load_st_model

                self._model = load_st_model("CrossEncoder", self.model_path, self.threads)
            return self._model

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        scores = self.load().predict(
            [(query, p) for p in passages], batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        if scores.ndim == 2:  # a classifier with several labels: the last one is "relevant" by convention
            scores = scores[:, -1]
        return [float(s) for s in scores]


class LLMReranker:
    """The chat LLM orders the candidates (listwise); scores are positions, the ones it names first."""

    def __init__(self, llm: ChatModel, passage_chars: int = 600) -> None:
        if passage_chars <= 0:
            raise ValueError("passage_chars must be positive")
        self.llm = llm
        self.passage_chars = passage_chars
        self.name = f"LLM {getattr(llm, 'model', type(llm).__name__)}"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        from rag.llms import complete_chat
        from rag.prompts import build_rerank_messages

        reply = complete_chat(self.llm, build_rerank_messages(query, passages, self.passage_chars))
        order = parse_ranking(reply, len(passages))
        if not order:
            raise RerankError(f"its reply names none of the candidates 1-{len(passages)}: {one_line(reply)!r}")
        n = len(passages)
        scores = [-1.0 - i for i in range(n)]  # not named: after the named ones, in the fused order
        for rank, i in enumerate(order):
            scores[i] = float(n - rank)
        return scores


def parse_ranking(reply: str, n: int) -> list[int]:
    """0-based candidate indexes in the order a reply names them ("3, 1, [2]" -> [2, 0, 1]); numbers outside 1..n
    and repeats are skipped."""
    seen: list[int] = []
    for match in _NUMBER.finditer(reply):
        i = int(match.group(0)) - 1
        if 0 <= i < n and i not in seen:
            seen.append(i)
    return seen


def build_reranker(cfg: RerankSettings, llm: ChatModel | None = None) -> Reranker | None:
    """The configured judge (None: no rerank stage). ValueError for a configuration that cannot work."""
    if cfg.provider == "none":
        return None
    if cfg.provider == "cross-encoder":
        return CrossEncoderReranker(cfg.model_path, cfg.batch_size, cfg.threads)
    if llm is None:
        raise ValueError(f"RAG_RERANK__PROVIDER=llm needs an LLM: {CONFIGURE_LLM}")
    return LLMReranker(llm, cfg.passage_chars)


def rerank(
    reranker: Reranker, query: str, items: Sequence[_T], top_n: int, passage: Callable[[_T], str]
) -> tuple[list[_T], list[float] | None, str]:
    """``items`` with the first ``top_n`` re-ordered by ``reranker`` (best first; the rest follow unchanged), the
    judge's scores of the re-ordered head (None if it failed), and a note ("" on success). On any failure of the
    judge: ``items`` unchanged and a one-line note saying the fused ranking is shown."""
    head, tail = list(items[:top_n]), list(items[top_n:])
    if not head:
        return list(items), None, ""
    try:
        scores = reranker.score(query, [passage(item) for item in head])
        if len(scores) != len(head) or not all(isinstance(s, float) and math.isfinite(s) for s in scores):
            raise RerankError(f"it returned {len(scores)} scores for {len(head)} candidates, or non-numbers")
    except Exception as exc:
        from rag.llms import failure_reason  # only on failure: the cross-encoder path never needs the OpenAI client

        note = f"rerank by {reranker.name} failed ({failure_reason(exc, RerankError)}); showing the fused ranking"
        return list(items), None, note
    order = sorted(range(len(head)), key=lambda i: (-scores[i], i))
    return [head[i] for i in order] + tail, [scores[i] for i in order], ""
