"""Switching the embedding model: the collection records which model made it, is never read with another, and
`rag ingest --reindex` rebuilds it for the new model beside the old one, swapping only once complete.

Both models are cheap and real at the HTTP boundary: the model-free ``hash`` provider, and an
``openai-compatible`` embeddings server played by the stdlib stub of tests/test_openai_embeddings.py (which also
fails mid-way to play a re-index killed halfway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from ingest.pipeline import Ingestor
from ingest.reindex import reindex, side_names
from rag.assistant import Assistant
from rag.embeddings import EmbeddingError
from rag.lexical import LexicalIndex
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import EmbeddingMismatchError, collection_names, connect, open_store
from tests.test_ingest import small_corpus, stored_ids
from tests.test_llms import Reply
from tests.test_openai_embeddings import STUB_DIM, STUB_MODEL, EmbeddingStub

QUERY = "sentence embeddings from dictionary definitions"


def _hash(data_dir: Path, **store: Any) -> Settings:
    return Settings(data_dir=data_dir, embedding={"provider": "hash"}, store=store)  # type: ignore[arg-type]


def _served(data_dir: Path, base_url: str, **store: Any) -> Settings:
    embedding = {
        "provider": "openai-compatible",
        "openai_base_url": base_url,
        "openai_model": STUB_MODEL,
        "openai_dim": STUB_DIM,
    }
    return Settings(data_dir=data_dir, embedding=embedding, store=store)  # type: ignore[arg-type]


def test_collection_records_provider_model_and_dimension(tmp_path: Path) -> None:
    settings = _hash(tmp_path / "idx")
    Ingestor(settings, open_store(settings)).ingest_paths([small_corpus(tmp_path, 2)])
    meta = open_store(settings).collection.metadata
    assert (meta["embed_provider"], meta["embed_model"], meta["embed_dim"]) == (
        "hash",
        "hash/sklearn-hashing-unigrams",
        384,
    )
    # Another model, another provider, or another size: refused in one line that says how to re-index.
    with EmbeddingStub() as stub:
        other = _served(tmp_path / "idx", stub.base_url)
        with pytest.raises(EmbeddingMismatchError) as info:
            Retriever.open(other).retrieve(QUERY, k=2)
        assert not stub.requests  # refused before any query vector was made
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "collection 'papers' was indexed with 'hash/sklearn-hashing-unigrams' (hash) (dim 384), but "
        f"'openai-compatible/{STUB_MODEL}' (openai-compatible) (dim {STUB_DIM}) is configured: run `rag ingest "
        "--reindex`"
    )


def test_collection_without_a_recorded_provider_still_opens(tmp_path: Path) -> None:
    """Indexes written before the provider was recorded are checked on model and dimension alone."""
    settings = _hash(tmp_path / "idx")
    client = connect(settings)
    client.create_collection(
        "papers", metadata={"embed_model": "hash/sklearn-hashing-unigrams", "embed_dim": 384}, embedding_function=None
    )
    assert open_store(settings, client).count() == 0


def test_openai_compatible_needs_base_url_and_dimension(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="openai-compatible needs a base URL: set RAG_EMBEDDING__OPENAI_BASE_URL"):
        open_store(Settings(data_dir=tmp_path, embedding={"provider": "openai-compatible"}))  # type: ignore[arg-type]
    no_dim = {"provider": "openai-compatible", "openai_base_url": "http://127.0.0.1:9/v1", "openai_model": "m"}
    with pytest.raises(ValueError, match="set RAG_EMBEDDING__OPENAI_DIM"):
        open_store(Settings(data_dir=tmp_path, embedding=no_dim))  # type: ignore[arg-type]


@pytest.mark.usefixtures("fast_retries")
def test_reindex_killed_halfway_keeps_the_old_index_then_finishes(tmp_path: Path) -> None:
    data = tmp_path / "idx"
    page = small_corpus(tmp_path, 6)
    old = _hash(data, write_batch=1)
    Ingestor(old, open_store(old)).ingest_paths([page])
    old_ids = sorted(stored_ids(open_store(old)))
    side, previous = side_names("papers")

    # The new model's server dies after its first request: the re-index stops, nothing is swapped.
    failing = Reply(status=503, body=b'{"error": {"message": "model is loading"}}')
    with EmbeddingStub(Reply(), failing) as stub:
        new = _served(data, stub.base_url, write_batch=1, retries=0)
        new = new.model_copy(update={"embedding": new.embedding.model_copy(update={"batch_size": 64})})
        with pytest.raises(EmbeddingError, match="failed with HTTP 503"):
            reindex(new, [page])
    assert {"papers", side} <= collection_names(connect(old))
    assert sorted(stored_ids(open_store(old))) == old_ids  # the old index serves, whole
    assert Assistant.open(old, ingest_if_empty=False).ask(QUERY).sources
    with pytest.raises(EmbeddingMismatchError):
        open_store(new).count()  # the new model cannot read it meanwhile
    half = len(stored_ids(open_store(new, collection=side)))
    assert 0 < half < len(old_ids)

    # Re-run with the server back: only the rest is embedded, then the swap.
    with EmbeddingStub() as stub:
        new = _served(data, stub.base_url, write_batch=1)
        report = reindex(new, [page])
        assert report.unchanged >= 1 and report.new + report.unchanged == 6
        assert stub.texts == report.chunks_written < len(old_ids)
        names = collection_names(connect(new))
        assert "papers" in names and previous in names and side not in names
        assert sorted(stored_ids(open_store(new))) == old_ids  # same chunks, new vectors
        assert sorted(LexicalIndex.load(new.bm25_path).ids) == old_ids
        answer = Assistant.open(new, ingest_if_empty=False).ask(QUERY)
        assert answer.sources and answer.sources[0].title.startswith("DefSent")
        # The replaced index is kept, still readable with the old model only.
        kept = _hash(data, collection=previous)
        assert sorted(stored_ids(open_store(kept))) == old_ids
        with pytest.raises(EmbeddingMismatchError, match="run `rag ingest --reindex`"):
            open_store(old).count()  # a collection made by one model is never queried with another

        # A second --reindex with the same model is an ordinary incremental ingest: nothing re-embedded.
        before = stub.texts
        again = reindex(new, [page])
        assert (again.unchanged, stub.texts) == (6, before)


def test_reindex_reading_nothing_swaps_nothing(tmp_path: Path) -> None:
    data = tmp_path / "idx"
    old = _hash(data)
    Ingestor(old, open_store(old)).ingest_paths([small_corpus(tmp_path, 2)])
    with EmbeddingStub() as stub:
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(ValueError, match=r"read no papers .* collection 'papers' is unchanged"):
            reindex(_served(data, stub.base_url), [empty])
    assert len(stored_ids(open_store(old))) > 0


def test_cli_reindex(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "idx"
    page = small_corpus(tmp_path, 3)
    monkeypatch.setenv("RAG_EMBEDDING__PROVIDER", "hash")
    assert main(["--data-dir", str(data), "ingest", "-q", str(page)]) == 0
    with EmbeddingStub() as stub:
        for key, value in _served(data, stub.base_url).embedding.model_dump().items():
            if value is not None:
                monkeypatch.setenv(f"RAG_EMBEDDING__{key.upper()}", str(value))
        capsys.readouterr()
        assert main(["--data-dir", str(data), "status"]) == 2
        assert "run `rag ingest --reindex`" in capsys.readouterr().err
        assert main(["--data-dir", str(data), "ingest", "-q", "--rebuild", "--reindex", str(page)]) == 2
        assert "--rebuild and --reindex exclude each other" in capsys.readouterr().err
        assert main(["--data-dir", str(data), "ingest", "-q", "--reindex", str(page)]) == 0
        assert "new 3" in capsys.readouterr().out
        assert main(["--data-dir", str(data), "status"]) == 0
        assert f'"embedding_model": "openai-compatible/{STUB_MODEL}"' in capsys.readouterr().out
