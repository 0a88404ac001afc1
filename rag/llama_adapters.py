"""The core's parts as llama-index components, for code that builds on llama-index (query engines, indices).

Kept apart from the parts themselves so that a query through ``Assistant`` never imports llama-index (~2 s of a
cold start); importing this module does.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

from rag.protocols import Embedder
from rag.retrieve import Filters, Retriever
from rag.types import Mode

__all__ = ["HybridRetriever", "LlamaEmbedding"]


class LlamaEmbedding(BaseEmbedding):
    """Any ``Embedder`` (the bundled model, an OpenAI-compatible API) as a llama-index embedding model."""

    _inner: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, embed_batch_size: int = 2048) -> None:
        # One large slice: the wrapped embedder does its own batching (the bundled one sorts a batch by length).
        super().__init__(model_name=embedder.model_name, embed_batch_size=embed_batch_size)
        self._inner = embedder

    @classmethod
    def class_name(cls) -> str:
        return "LlamaEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._inner.get_text_embedding_batch(texts)  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._inner.get_query_embedding(query)  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class HybridRetriever(BaseRetriever):
    """The same retrieval as a llama-index retriever (one node per paper, its best chunk), for query engines."""

    def __init__(
        self, retriever: Retriever, k: int = 10, mode: Mode | str = Mode.HYBRID, filters: Filters | None = None
    ):
        super().__init__()
        self._inner = retriever
        self._k = k
        self._mode = Mode.parse(mode)
        self._filters = filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._inner.retrieve(query_bundle.query_str, self._k, self._mode, self._filters)
        return [
            NodeWithScore(node=TextNode(id_=h.chunk_id, text=h.best_chunk, metadata=h.metadata), score=h.score)
            for h in hits
        ]
