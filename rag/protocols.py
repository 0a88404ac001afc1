"""The interfaces at the core's seams. Anything with these methods plugs in: llama-index's embeddings and LLMs
(the bundled model, OpenAI, OpenAI-compatible servers) and the tests' in-process fakes alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from llama_index.core.base.llms.types import ChatMessage, ChatResponse, ChatResponseGen

    from rag.types import Probe

__all__ = ["ChatModel", "Embedder", "LexicalSearch", "QueryEmbedder", "Reranker", "Rewriter"]


class QueryEmbedder(Protocol):
    """One question to a vector (all that retrieval-time checks such as topicality need)."""

    def get_query_embedding(self, query: str) -> list[float]: ...


@runtime_checkable
class Embedder(QueryEmbedder, Protocol):
    """Texts to vectors: documents in batches (ingest), one query at a time (retrieval, topicality)."""

    model_name: str

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]: ...


@runtime_checkable
class ChatModel(Protocol):
    """A chat LLM: the whole answer, or its text as a stream of deltas."""

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse: ...

    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen: ...


class LexicalSearch(Protocol):
    """A BM25 index over chunk ids: ranked ``(chunk id, score)`` and the best score a query could reach."""

    def search(self, query: str, k: int = 10) -> list[tuple[str, float]]: ...

    def attainable(self, query: str) -> float: ...


class Reranker(Protocol):
    """The optional second retrieval stage (rag.rerank): relevance scores of ``passages`` for ``query``, one per
    passage in order, higher is better. ``name`` says which model in flags shown to the user."""

    name: str

    def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


class Rewriter(Protocol):
    """The optional query-rewriting stage (rag.rewrite): the searches that stand for ``query``, whose rankings are
    fused (the question's own search among them, or folded into one). ``name`` says which model in flags shown to
    the user."""

    name: str

    def probes(self, query: str) -> list[Probe]: ...
