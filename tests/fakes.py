"""In-process fakes for the fast test loop (simonw/llm's ``EmbedDemo`` and ``MockModel``, tests/conftest.py):
a deterministic embedder and a scripted chat LLM, both tiny, both speaking the core's protocols (rag.protocols), so the
Assistant, the CLI and the UI run end to end without the bundled model or llama.cpp.

>>> embedder = FakeEmbedding()                       # hashed words and character trigrams, unit length
>>> llm = FakeLLM(["PARTIAL: the abstracts do not give the batch size. K-means supplies negatives [1]."])
>>> assistant = Assistant.open(settings, store=store, embedder=embedder, llm=llm)

The real model, the real llama.cpp server and the real Chroma server are tested too, behind the ``slow`` marker.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ChatResponseGen

__all__ = [
    "FAKE_DIM",
    "FakeEmbedding",
    "FakeLLM",
    "quote_first_source",
    "write_corpus_subset",
    "write_tiny_cross_encoder",
]

FAKE_DIM = 384
"""The fake's vector size: the size the settings' embedding identity records on the collection (see ``fake_settings``
in conftest.py), so a store opened from those settings accepts the fake's vectors."""

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    re.findall(
        r"\w+",
        "a an and are as at be by can do does for from has have how in into is it its of on or our that the their "
        "them these they this to was we were what when which who why will with",
    )
)


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if value >> 63 else -1.0


class FakeEmbedding:
    """Deterministic text vectors without a model: content words (weight 1) and their character trigrams (weight
    0.25) hashed into ``dim`` signed buckets, L2-normalised. Texts sharing words are close, others near
    orthogonal: lexical, not semantic, which is all the Assistant, CLI and UI logic needs."""

    def __init__(self, dim: int = FAKE_DIM) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.model_name = "fake/hashed-words"
        self.dim = dim

    def vector(self, text: str) -> list[float]:
        v = np.zeros(self.dim, dtype=np.float64)
        for word in _WORD.findall(text.lower()):
            if word in _STOPWORDS:
                continue
            i, sign = _bucket(word, self.dim)
            v[i] += sign
            padded = f"#{word}#"
            for j in range(len(padded) - 2):
                i, sign = _bucket(padded[j : j + 3], self.dim)
                v[i] += 0.25 * sign
        norm = float(np.linalg.norm(v))
        return (v / norm).tolist() if norm else v.tolist()

    def get_query_embedding(self, query: str) -> list[float]:
        return self.vector(query)

    def get_text_embedding(self, text: str) -> list[float]:
        return self.vector(text)

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        return [self.vector(t) for t in texts]


_SOURCE_LINE = re.compile(r"^\[(\d+)\] (.*?) — (.*)$", re.MULTILINE)


def _sources(prompt: str) -> dict[int, tuple[str, str]]:
    """n -> (title, abstract) of the ``<sources>`` block of a prompt built by rag.prompts."""
    block = prompt.split("<sources>", 1)[-1].split("</sources>", 1)[0]
    return {int(n): (title, text) for n, title, text in _SOURCE_LINE.findall(block)}


def quote_first_source(messages: Sequence[ChatMessage]) -> str:
    """The reply of a model that follows the rules: source [1]'s first sentence, cited; the rewrite prompt's
    question unchanged; NOT_COVERED when no source was given."""
    from rag.prompts import NOT_COVERED

    prompt = str(messages[-1].content or "")
    if "<sources>" not in prompt:  # the follow-up rewrite: the question as it stands
        return prompt.split("<question>", 1)[-1].split("</question>", 1)[0].strip()
    sources = _sources(prompt)
    if 1 not in sources:
        return NOT_COVERED
    first = re.split(r"(?<=[.!?])\s+", sources[1][1].strip(), maxsplit=1)[0].rstrip(".")
    return f"{first} [1]."


class FakeLLM:
    """A chat model in-process (the ``ChatModel`` protocol): answers from a queue of scripted replies, then by
    ``quote_first_source``. A queued exception is raised by the call that takes it (before any delta, or after
    ``fail_after`` deltas when streaming). Every call's messages are kept in ``calls``; replies stream word by word.
    A plain class, not a llama-index ``CustomLLM``: the fast loop then imports llama-index only in the tests whose
    code builds LLM messages."""

    model = "fake-llm"

    def __init__(self, replies: Iterable[str | BaseException] = (), fail_after: int = 0) -> None:
        self.replies: list[str | BaseException] = list(replies)
        self.fail_after = fail_after
        self.calls: list[list[ChatMessage]] = []

    def _next(self, messages: Sequence[ChatMessage]) -> str | BaseException:
        self.calls.append(list(messages))
        return self.replies.pop(0) if self.replies else quote_first_source(messages)

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole

        reply = self._next(messages)
        if isinstance(reply, BaseException):
            raise reply
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=reply))

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        from llama_index.core.base.llms.types import ChatMessage, ChatResponse, MessageRole

        reply = self._next(messages)
        if isinstance(reply, BaseException) and not self.fail_after:
            raise reply
        words = ["partial "] * self.fail_after if isinstance(reply, BaseException) else re.findall(r"\S+\s*", reply)

        def gen() -> ChatResponseGen:
            text = ""
            for word in words:
                text += word
                yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=word)
            if isinstance(reply, BaseException):  # the connection breaks off mid-answer
                raise reply

        return gen()


def write_corpus_subset(corpus: Path, out: Path, titles: Sequence[str], extra: int) -> list[str]:
    """Write the bundled papers whose title starts with one of ``titles``, plus the first ``extra`` others by id, as
    JSON lines to ``out`` (with their ids, so answers cite the same papers as on the full corpus); returns the ids."""
    from ingest.dedup import dedup
    from ingest.formats import read_paths

    papers = sorted(dedup(read_paths([corpus])[0].records), key=lambda p: p.paper_id)
    wanted = [p for p in papers if p.title.startswith(tuple(titles))]
    missing = [t for t in titles if not any(p.title.startswith(t) for p in wanted)]
    assert not missing, f"not in the bundled corpus: {missing}"
    chosen = wanted + [p for p in papers if p not in wanted][:extra]
    out.write_text("".join(json.dumps(_row(p)) + "\n" for p in chosen), encoding="utf-8")
    return [p.paper_id for p in chosen]


def _row(paper: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": paper.paper_id, "title": paper.title, "abstract": paper.abstract}
    for key in ("year", "url", "arxiv_id", "categories", "authors"):
        value = getattr(paper, key, None)
        if value:
            row[key] = list(value) if isinstance(value, tuple) else value
    return row


UPLOADED = {
    "id": "upl-1",
    "title": "Origami Attention for Protein Folding",
    "abstract": "We propose origami attention, an attention mechanism that folds sequence representations like "
    "paper to model protein folding. Origami attention improves contact prediction on protein benchmarks.",
    "year": 2024,
    "url": "https://example.org/origami",
    "categories": ["q-bio.BM", "cs.LG"],
}
"""A paper the upload tests add (a topic no bundled paper has)."""


def assert_cli_error(out: str, err: str, message: str, as_json: bool) -> None:
    """A CLI error is one JSON object on stdout under --json, else text on stderr, and nothing on the other."""
    if as_json:
        assert message in json.loads(out)["error"] and err == ""
    else:
        assert message in err and out == ""


def write_tiny_cross_encoder(path: Path, seed: int = 0) -> Path:
    """A randomly initialised two-layer BERT cross-encoder (hidden size 32, one output) with a word-level vocab,
    saved as a local model directory: no cross-encoder ships offline, and the rerank plumbing needs only a real
    ``CrossEncoder`` to load. Its scores are deterministic and meaningless. Imports torch (slow tests only)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = sorted(set(_WORD.findall(" ".join([*_STOPWORDS, "contrastive sentence embeddings negative sampling"]))))
    path.mkdir(parents=True, exist_ok=True)
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=5 + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    config.num_labels = 1  # one relevance logit per pair
    BertForSequenceClassification(config).save_pretrained(path)
    BertTokenizer(vocab=str(vocab), do_lower_case=True).save_pretrained(path)
    return path
