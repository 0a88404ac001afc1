"""The OpenAI embeddings option (``embedding.provider = "openai"``) against real and stub OpenAI-compatible servers.

- ``llm_server`` (+ ``slow``): a real ``python -m llama_cpp.server`` serving the bundled SmolLM2-135M GGUF in
  embedding mode with mean pooling (the ``embedding_server`` fixture): a real ingest and retrieval.
- Faults at the HTTP boundary come from a stdlib ``http.server`` stub in the style of tests/test_llms.py: a dead
  endpoint, a server failing mid-ingest, rejected keys, unpooled or mis-sized vectors. Each ends in one
  ``EmbeddingError`` line, and an interrupted ingest loses nothing and finishes when re-run.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.dedup import dedup
from ingest.formats.hf_pages import read_hf_pages
from ingest.pipeline import Ingestor
from rag.embeddings import OPENAI_MAX_RETRIES, EmbeddingError, build_embedder, embedder_identity
from rag.lexical import LexicalIndex
from rag.retrieve import Retriever
from rag.settings import EmbeddingSettings, Settings
from rag.store import EmbeddingMismatchError, open_store
from tests.conftest import EmbeddingServer, free_port
from tests.test_ingest import expected_chunk_ids, small_corpus, stored_ids
from tests.test_llms import Reply, Stub

HANG_GUARD_S = 30.0
SECRET = "sk-test-0123456789abcdefSECRET"
STUB_MODEL = "stub-embed"
STUB_DIM = 64
SMOLLM2_DIM = 576  # SmolLM2-135M's hidden size


def _openai(base_url: str, model: str, dim: int | None, **overrides: Any) -> dict[str, Any]:
    return {"provider": "openai", "openai_base_url": base_url, "openai_model": model, "openai_dim": dim, **overrides}


def _sentence(text: str, start: str) -> str:
    return next(s for s in re.split(r"(?<=[.!?])\s+", text) if s.startswith(start))


# --------------------------------------------------------------------------------------------------- real server


@pytest.mark.slow
@pytest.mark.llm_server
def test_real_server_ingest_and_retrieve(embedding_server: EmbeddingServer, tmp_path: Path) -> None:
    url, model = embedding_server
    assert model == "SmolLM2-135M-Instruct-mean"
    embedding = _openai(url, model, SMOLLM2_DIM, openai_api_key="sk-local")
    settings = Settings(data_dir=tmp_path / "idx", embedding=embedding)  # type: ignore[arg-type]
    page = small_corpus(tmp_path, 4)
    store = open_store(settings)
    report = Ingestor(settings, store).ingest_paths([page])  # the embedder is built from the settings
    assert report.ok and report.new == 4
    papers = dedup(read_hf_pages(page).records)
    assert set(stored_ids(store)) == expected_chunk_ids(papers, settings)
    assert report.total_chunks == report.chunks_written == len(expected_chunk_ids(papers, settings))

    meta = store.collection.metadata
    assert (meta["embed_model"], meta["embed_dim"]) == (f"openai/{model}", SMOLLM2_DIM)
    vectors = np.array(store.get(include=["embeddings"])["embeddings"])
    assert vectors.shape == (report.total_chunks, SMOLLM2_DIM)
    assert np.isfinite(vectors).all() and (np.linalg.norm(vectors, axis=1) > 0).all()

    # A sentence of a paper's own abstract, as the query, finds that paper first by vectors alone.
    retriever = Retriever.open(settings, store)
    by_title = {p.title: p.abstract for p in papers}
    queries = {
        "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation": "To address these issues",
        "DefSent: Sentence Embeddings using Definition Sentences": "Since dictionaries are available",
        "SimCSE: Simple Contrastive Learning of Sentence Embeddings": "We evaluate SimCSE",
    }
    for title, start in queries.items():
        hits = retriever.retrieve(_sentence(by_title[title], start), k=4, mode="dense")
        assert hits[0].title == title, [h.title for h in hits]
        assert hits[0].score > hits[1].score  # no tie

    # The same collection cannot be read with the bundled local model: its vectors mean something else.
    local = Settings(data_dir=tmp_path / "idx")
    expected = rf"indexed with 'openai/{model}' \(openai\) \(dim {SMOLLM2_DIM}\)"
    with pytest.raises(EmbeddingMismatchError, match=expected):
        open_store(local).count()


@pytest.mark.slow
@pytest.mark.llm_server
def test_real_server_wrong_dimension_is_reported(embedding_server: EmbeddingServer) -> None:
    url, model = embedding_server
    embedder = build_embedder(EmbeddingSettings(**_openai(url, model, 768)))
    with pytest.raises(EmbeddingError, match=rf"returned {SMOLLM2_DIM}-dimensional vectors, but '{model}' .* 768"):
        embedder.get_query_embedding("contrastive sentence embeddings")


# --------------------------------------------------------------------------------------------------- dimensions


def test_unknown_model_needs_its_dimension(tmp_path: Path) -> None:
    unknown = EmbeddingSettings(provider="openai", openai_model="nomic-embed-text")
    with pytest.raises(ValueError, match=r"vector size of embedding model 'nomic-embed-text' is unknown: set RAG_"):
        embedder_identity(unknown)
    with pytest.raises(ValueError, match="RAG_EMBEDDING__OPENAI_DIM"):
        open_store(Settings(data_dir=tmp_path, embedding=unknown))
    with pytest.raises(ValueError, match="RAG_EMBEDDING__OPENAI_DIM"):
        build_embedder(unknown)
    known = unknown.model_copy(update={"openai_dim": 768})
    assert embedder_identity(known) == ("openai/nomic-embed-text", 768)
    assert embedder_identity(EmbeddingSettings(provider="openai")) == ("openai/text-embedding-3-small", 1536)
    conflict = EmbeddingSettings(provider="openai", openai_model="text-embedding-3-large", openai_dim=1024)
    with pytest.raises(ValueError, match="returns 3072-dimensional vectors, but RAG_EMBEDDING__OPENAI_DIM=1024"):
        embedder_identity(conflict)


def test_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="RAG_EMBEDDING__PROVIDER=openai needs an API key: set OPENAI_API_KEY"):
        build_embedder(EmbeddingSettings(provider="openai"))
    # A local server needs none: the SDK gets a placeholder.
    local = build_embedder(EmbeddingSettings(**_openai("http://127.0.0.1:9/v1", "m", 8)))
    assert local.api_key == "not-needed"  # type: ignore[attr-defined]
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert build_embedder(EmbeddingSettings(provider="openai")).api_key == SECRET  # type: ignore[attr-defined]


def test_openai_dim_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_EMBEDDING__PROVIDER", "openai")
    monkeypatch.setenv("RAG_EMBEDDING__OPENAI_MODEL", "local-model")
    monkeypatch.setenv("RAG_EMBEDDING__OPENAI_DIM", "576")
    assert embedder_identity(Settings().embedding) == ("openai/local-model", 576)


# --------------------------------------------------------------------------------------------------- stub server


def stub_vector(text: str, dim: int = STUB_DIM) -> list[float]:
    """A deterministic pseudo-random unit vector per text (not semantic: the fault tests need only a shape)."""
    vec = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(dim)
    return [float(x) for x in vec / np.linalg.norm(vec)]


def _embeddings(payload: dict[str, Any], vector: Callable[[str], Any] = stub_vector) -> bytes:
    texts = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
    data = [{"object": "embedding", "index": i, "embedding": vector(t)} for i, t in enumerate(texts)]
    usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
    return json.dumps({"object": "list", "data": data, "model": STUB_MODEL, "usage": usage}).encode()


class EmbeddingStub(Stub):
    """An OpenAI-ish /v1/embeddings endpoint answering from a script of ``Reply``s (the last one repeats); a reply
    without a body gets one ``stub_vector`` per input text (``vector`` changes what a vector is)."""

    def __init__(self, *replies: Reply, vector: Callable[[str], Any] = stub_vector) -> None:
        super().__init__(*replies)
        self.vector = vector

    def default_reply(self, payload: dict[str, Any], reply: Reply) -> tuple[bytes, str]:
        return _embeddings(payload, self.vector), reply.content_type

    @property
    def texts(self) -> int:
        return sum(len(r["input"]) for r in self.requests)

    def __enter__(self) -> EmbeddingStub:
        super().__enter__()
        return self


def _stub_settings(data_dir: Path, base_url: str, **store: Any) -> Settings:
    embedding = _openai(base_url, STUB_MODEL, STUB_DIM, openai_api_key=SECRET)
    return Settings(data_dir=data_dir, embedding=embedding, store=store)  # type: ignore[arg-type]


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    try:
        result = fn()
    except EmbeddingError as exc:
        result = exc
    return result, time.monotonic() - t0


def _grow(tmp_path: Path, page: Path) -> None:
    """Rewrite ``page``: its second abstract changed (an update and a stale chunk) and three more papers (new)."""
    lines = page.read_text().splitlines()
    lines[3] = lines[3] + " We also add a brand new sentence about quokkas."
    extra = small_corpus(tmp_path, 6, name="six.txt").read_text().splitlines()[len(lines) :]
    page.write_text("\n".join(lines + extra) + "\n")


@pytest.mark.slow
@pytest.mark.usefixtures("fast_retries")
def test_dead_endpoint_during_ingest_loses_nothing(tmp_path: Path) -> None:
    page = small_corpus(tmp_path, 3)
    with EmbeddingStub() as stub:
        live = _stub_settings(tmp_path / "idx", stub.base_url)
        assert Ingestor(live, open_store(live)).ingest_paths([page]).new == 3
        before = sorted(stored_ids(open_store(live)))
        _grow(tmp_path, page)

        dead_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        dead = _stub_settings(tmp_path / "idx", dead_url)
        store = open_store(dead)
        error, elapsed = _timed(lambda: Ingestor(dead, store).ingest_paths([page]))
        assert isinstance(error, EmbeddingError), error
        assert str(error).startswith(f"the embeddings API at {dead_url} is unreachable ({OPENAI_MAX_RETRIES + 1} ")
        assert "refused" in str(error).lower()
        assert elapsed < HANG_GUARD_S
        # Nothing was written or deleted, and BM25 still describes exactly the stored chunks.
        assert sorted(stored_ids(store)) == before
        assert sorted(LexicalIndex.load(live.bm25_path).ids) == before
        # Retrieval that needs no query vector keeps working meanwhile.
        assert (
            Retriever.open(dead, store)
            .retrieve("DefSent dictionaries", k=1, mode="bm25")[0]
            .title.startswith("DefSent")
        )

        # The endpoint is back: the same ingest finishes exactly.
        again = Ingestor(live, open_store(live)).ingest_paths([page])
    assert (again.new, again.updated, again.unchanged) == (3, 1, 2)
    want = expected_chunk_ids(dedup(read_hf_pages(page).records), live)
    assert set(stored_ids(open_store(live))) == want
    assert set(LexicalIndex.load(live.bm25_path).ids) == want


@pytest.mark.slow
@pytest.mark.usefixtures("fast_retries")
def test_endpoint_failing_mid_ingest_then_rerun_is_exact(tmp_path: Path) -> None:
    page = small_corpus(tmp_path, 6)
    papers = dedup(read_hf_pages(page).records)
    failing = Reply(status=503, body=b'{"error": {"message": "model is loading"}}')
    with EmbeddingStub(Reply(), failing) as stub:  # the first request succeeds, every later one fails
        # write_batch 1: every paper is embedded in its own request and written on its own.
        settings = _stub_settings(tmp_path / "idx", stub.base_url, write_batch=1)
        store = open_store(settings)
        error, elapsed = _timed(lambda: Ingestor(settings, store).ingest_paths([page]))
        assert isinstance(error, EmbeddingError), error
        assert str(error) == (
            f"the embeddings API at {stub.base_url} failed with HTTP 503 ({OPENAI_MAX_RETRIES + 1} attempts): "
            "model is loading"
        )
        # One request, then the SDK's retries of the second; llama-index's own retry layer is off.
        assert len(stub.requests) == 1 + OPENAI_MAX_RETRIES + 1
        assert elapsed < HANG_GUARD_S
    # The first paper is stored whole; nothing else is.
    first = expected_chunk_ids(papers[:1], settings)
    assert set(stored_ids(store)) == first

    with EmbeddingStub() as stub:
        settings = _stub_settings(tmp_path / "idx", stub.base_url, write_batch=1)
        store = open_store(settings)
        report = Ingestor(settings, store).ingest_paths([page])
        assert (report.new, report.unchanged) == (5, 1)
        assert stub.texts == report.chunks_written == len(expected_chunk_ids(papers[1:], settings))
    assert set(stored_ids(store)) == expected_chunk_ids(papers, settings)
    assert set(LexicalIndex.load(settings.bm25_path).ids) == expected_chunk_ids(papers, settings)


def _token_level(text: str) -> list[list[float]]:
    return [stub_vector(word) for word in text.split()[:3]]


@pytest.mark.parametrize(
    ("reply", "vector", "expected"),
    [
        (
            Reply(status=401, body=json.dumps({"error": {"message": f"bad key {SECRET}"}}).encode()),
            None,
            r"rejected the API key \(HTTP 401\): check OPENAI_API_KEY / RAG_EMBEDDING__OPENAI_API_KEY$",
        ),
        (
            Reply(status=404, body=b'{"error": {"message": "model not found"}}'),
            None,
            rf"returned HTTP 404 \(unknown model '{STUB_MODEL}' or wrong base URL\?\): model not found$",
        ),
        (
            Reply(status=500, body=b"kaboom", content_type="text/plain"),
            None,
            rf"failed with HTTP 500 \({OPENAI_MAX_RETRIES + 1} attempts\): kaboom$",
        ),
        (Reply(body=b"<html>502 Bad Gateway</html>"), None, r"returned an unexpected response: "),
        (Reply(), _token_level, r"returned one vector per token, not one per text \(unpooled embeddings\)"),
        (Reply(), lambda t: stub_vector(t, 32), rf"returned 32-dimensional vectors, but '{STUB_MODEL}' .* {STUB_DIM}"),
        (Reply(), lambda t: ["x"] * STUB_DIM, r"returned something other than a vector of numbers$"),
    ],
    ids=["401-key-hidden", "404", "500-retried", "not-json", "unpooled", "wrong-dim", "not-numbers"],
)
@pytest.mark.usefixtures("fast_retries")
def test_api_faults_are_one_line(reply: Reply, vector: Callable[[str], Any] | None, expected: str) -> None:
    with EmbeddingStub(reply, vector=vector or stub_vector) as stub:
        embedder = build_embedder(_stub_settings(Path("unused"), stub.base_url).embedding)
        error, elapsed = _timed(lambda: embedder.get_text_embedding_batch(["first text", "second text"]))
    assert isinstance(error, EmbeddingError), error
    message = str(error)
    assert message.startswith(f"the embeddings API at {stub.base_url} ")
    assert re.search(expected, message), message
    assert SECRET not in message and "\n" not in message
    assert elapsed < HANG_GUARD_S


def test_stub_success_query_and_batch() -> None:
    with EmbeddingStub() as stub:
        embedder = build_embedder(_stub_settings(Path("unused"), stub.base_url).embedding)
        assert embedder.get_query_embedding("a query") == pytest.approx(stub_vector("a query"))
        batch = embedder.get_text_embedding_batch([f"text {i}" for i in range(20)])
    assert batch == [pytest.approx(stub_vector(f"text {i}")) for i in range(20)]
    # A model name llama-index does not know is sent as is, in batches of embedding.batch_size (16).
    assert [r["model"] for r in stub.requests] == [STUB_MODEL] * 3
    assert [len(r["input"]) for r in stub.requests] == [1, 16, 4]


@pytest.mark.slow
def test_cli_dead_embeddings_endpoint_is_one_line_exit_2(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    dead_url = f"http://127.0.0.1:{free_port()}/v1"
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(tmp_path / "idx"),
        "RAG_EMBEDDING__PROVIDER": "openai",
        "RAG_EMBEDDING__OPENAI_BASE_URL": dead_url,
        "RAG_EMBEDDING__OPENAI_MODEL": STUB_MODEL,
        "RAG_EMBEDDING__OPENAI_DIM": str(STUB_DIM),
    }
    res = subprocess.run(
        [sys.executable, "-m", "app", "ingest", "-q", str(small_corpus(tmp_path, 2))],
        env=env,
        text=True,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert res.returncode == 2, res.stderr
    assert f"error: the embeddings API at {dead_url} is unreachable" in res.stderr
    assert "Traceback" not in res.stderr
