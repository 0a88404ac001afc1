"""Client/server mode: the same code path against a real `chroma run` server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.dedup import dedup
from ingest.formats.hf_pages import read_hf_pages
from ingest.pipeline import Ingestor
from rag.lexical import LexicalIndex, fingerprint
from rag.lexical_sync import LexicalView
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.store import StoreUnavailableError, open_store
from tests.conftest import ChromaServer, free_port
from tests.test_ingest import expected_chunk_ids, small_corpus, stored_ids

pytestmark = [pytest.mark.slow, pytest.mark.server]


def server_settings(tmp_path: Path, host: str, port: int, collection: str, data: str = "idx", **store: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / data,
        store={"mode": "server", "host": host, "port": port, "collection": collection, **store},  # type: ignore[arg-type]
        retrieval={"lexical_refresh": 0.0},  # type: ignore[arg-type]
    )


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points a `rag` subprocess at the same server, collection and data dir."""
    cfg = settings.store
    return {
        **os.environ,
        "RAG_DATA_DIR": str(settings.data_dir),
        "RAG_STORE__MODE": "server",
        "RAG_STORE__HOST": cfg.host,
        "RAG_STORE__PORT": str(cfg.port),
        "RAG_STORE__COLLECTION": cfg.collection,
        **extra,
    }


def rag_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, text=True, capture_output=True, timeout=timeout, check=False
    )


def bm25_titles(retriever: Retriever, query: str) -> list[str]:
    return [h.title for h in retriever.retrieve(query, k=3, mode="bm25")]


def test_ingest_and_reingest_through_a_server(tmp_path: Path, chroma_server: tuple[str, int], embedder: Any) -> None:
    host, port = chroma_server
    settings = server_settings(tmp_path, host, port, "server-ingest")
    page = small_corpus(tmp_path, 10)
    store = open_store(settings)
    first = Ingestor(settings, store, embedder).ingest_paths([page])
    assert (first.new, first.total_chunks) == (10, first.chunks_written)
    again = Ingestor(settings, open_store(settings)).ingest_paths([page])
    assert (again.unchanged, again.chunks_written) == (10, 0)
    ids = stored_ids(store)
    assert LexicalIndex.load(settings.bm25_path).fingerprint == fingerprint(ids)
    # Nothing was written to an embedded database on this side.
    assert not settings.chroma_path.exists()


def test_cli_status_in_server_mode(tmp_path: Path, chroma_server: tuple[str, int], embedder: Any) -> None:
    host, port = chroma_server
    settings = server_settings(tmp_path, host, port, "server-status")
    Ingestor(settings, open_store(settings), embedder).ingest_paths([small_corpus(tmp_path, 3)])
    env = {
        **os.environ,
        "RAG_DATA_DIR": str(tmp_path / "idx"),
        "RAG_STORE__MODE": "server",
        "RAG_STORE__HOST": host,
        "RAG_STORE__PORT": str(port),
        "RAG_STORE__COLLECTION": "server-status",
    }
    res = subprocess.run(
        [sys.executable, "-m", "app", "status"], env=env, text=True, capture_output=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert (info["store"], info["papers"], info["location"]) == ("server", 3, f"{host}:{port}")


def test_dead_server_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(StoreUnavailableError, match=rf"cannot open Chroma at 127.0.0.1:{port}.*chroma run"):
        open_store(server_settings(tmp_path, "127.0.0.1", port, "papers"))
    env = {**os.environ, "RAG_STORE__MODE": "server", "RAG_STORE__PORT": str(port), "RAG_DATA_DIR": str(tmp_path)}
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "app", "ingest"], env=env, text=True, capture_output=True, timeout=120, check=False
    )
    assert res.returncode == 2
    assert "cannot open Chroma" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - start < 60


def test_two_processes_on_one_server_keep_bm25_in_step(
    tmp_path: Path, chroma_server: tuple[str, int], embedder: Any
) -> None:
    """Worker A serves queries while process B (another `rag` process, its own data dir) ingests into the same
    collection: A's BM25 index follows, describing exactly the collection's chunks, and a new worker C with an
    empty data dir builds its BM25 index from the server."""
    host, port = chroma_server
    a = server_settings(tmp_path, host, port, "two-procs", data="a")
    store = open_store(a)
    Ingestor(a, store, embedder).ingest_paths([small_corpus(tmp_path, 8)])
    worker_a = Retriever.open(a, store, embedder)
    assert isinstance(worker_a.lexical, LexicalView)
    assert bm25_titles(worker_a, "quokkaformer marsupial") == []

    new = tmp_path / "new.jsonl"
    title = "QuokkaFormer: Marsupial Attention for Transformers"
    abstract = (
        "We introduce QuokkaFormer, a transformer whose attention heads are pruned by a marsupial-inspired "
        "schedule. QuokkaFormer matches dense attention on long-document retrieval at a third of the cost."
    )
    new.write_text(json.dumps({"title": title, "abstract": abstract}) + "\n")
    b = server_settings(tmp_path, host, port, "two-procs", data="b")
    res = rag_cli(["ingest", str(new)], server_env(b))
    assert res.returncode == 0, res.stderr
    assert "new 1" in res.stdout

    worker_a.retrieve("quokkaformer", k=1, mode="bm25")  # the check that notices B's publish
    worker_a.lexical.wait(120)
    assert bm25_titles(worker_a, "quokkaformer marsupial transformer")[:1] == [title]
    ids = stored_ids(store)
    index = worker_a.lexical.index
    assert index is not None and sorted(index.ids) == sorted(ids) and index.fingerprint == fingerprint(ids)
    assert store.published_fingerprint() == fingerprint(ids)
    assert store.paper_count() == 9  # published by B's ingest: status displays never scan the collection

    # B changes the paper: its old chunks leave the collection. A, before it refreshes, drops BM25 hits on the
    # deleted chunks instead of returning empty papers; after it refreshes, the index matches again.
    worker_a.lexical.refresh = 3600.0
    new.write_text(json.dumps({"title": title, "abstract": abstract.replace("marsupial", "wombat")}) + "\n")
    res = rag_cli(["ingest", str(new)], server_env(b))
    assert res.returncode == 0 and "updated 1" in res.stdout, res.stdout + res.stderr
    stale = worker_a.retrieve("marsupial quokkaformer", k=5, mode="bm25")
    live = set(stored_ids(store))
    old_hits = {cid for cid, _ in worker_a.lexical.index.search("marsupial quokkaformer", 5)}  # type: ignore[union-attr]
    assert old_hits - live  # A's stale index still points at the deleted chunk ...
    assert stale == []  # ... which is dropped, not returned as an empty paper
    worker_a.lexical.check()
    worker_a.lexical.wait(120)
    assert sorted(worker_a.lexical.index.ids) == sorted(live)  # type: ignore[union-attr]
    assert bm25_titles(worker_a, "wombat quokkaformer")[:1] == [title]

    # A third worker with nothing on its disk builds BM25 from the server before serving.
    c = server_settings(tmp_path, host, port, "two-procs", data="c")
    res = rag_cli(["ask", "wombat QuokkaFormer", "--mode", "bm25", "--json"], server_env(c))
    assert res.returncode == 0, res.stderr
    assert title in [s["title"] for s in json.loads(res.stdout)["sources"]]
    assert LexicalIndex.load(c.bm25_path).fingerprint == fingerprint(live)


def test_restarted_server_is_reconnected_without_restarting_the_app(tmp_path: Path, embedder: Any) -> None:
    server = ChromaServer(tmp_path / "srv").start()
    try:
        settings = server_settings(tmp_path, *server.address, "restart", retries=1, retry_backoff=0.2)
        store = open_store(settings)
        Ingestor(settings, store, embedder).ingest_paths([small_corpus(tmp_path, 6)])
        retriever = Retriever.open(settings, store, embedder)
        before = [h.paper_id for h in retriever.retrieve("sentence embeddings", k=3)]
        assert len(before) == 3

        server.stop(kill=True)
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError, match=r"stopped answering.*chroma run"):
            retriever.retrieve("sentence embeddings", k=3)
        assert time.monotonic() - start < 30  # a clear error after the retries, not a hang

        server.start()  # same path, same port: the app's objects keep working
        assert [h.paper_id for h in retriever.retrieve("sentence embeddings", k=3)] == before
    finally:
        server.stop()


def test_server_killed_mid_ingest_then_rerun_is_exact(tmp_path: Path, embedder: Any) -> None:
    server = ChromaServer(tmp_path / "srv").start()
    try:
        settings = server_settings(tmp_path, *server.address, "killed-ingest")
        page = small_corpus(tmp_path, 150)
        env = server_env(settings, RAG_STORE__WRITE_BATCH="8", RAG_STORE__RETRIES="1", RAG_STORE__RETRY_BACKOFF="0.2")
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "ingest", "-q", str(page)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watcher = open_store(settings)
        deadline = time.monotonic() + 240
        written = 0
        while time.monotonic() < deadline and proc.poll() is None:
            written = watcher.count()
            if written >= 40:
                break
            time.sleep(0.05)
        server.stop(kill=True)
        out, err = proc.communicate(timeout=120)
        assert written >= 40, (out, err)
        assert proc.returncode == 2, (out, err)
        assert "stopped answering" in err and "Traceback" not in err

        server.start()
        store = open_store(settings)
        partial = len(stored_ids(store))
        assert partial > 0
        res = rag_cli(["ingest", "-q", str(page)], env)
        assert res.returncode == 0, res.stderr
        papers = dedup(read_hf_pages(page).records)
        ids = stored_ids(store)
        assert len(ids) == len(set(ids))
        assert set(ids) == expected_chunk_ids(papers, settings)
        assert LexicalIndex.load(settings.bm25_path).fingerprint == fingerprint(ids) == store.published_fingerprint()
    finally:
        server.stop()


def test_tenant_and_database_select_where_the_collection_lives(
    tmp_path: Path, chroma_server: tuple[str, int], embedder: Any
) -> None:
    """Chroma Cloud / multi-tenant servers: only connection settings change (here: a second database)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port = chroma_server
    settings = server_settings(tmp_path, host, port, "per-database", database="team_b")
    with pytest.raises(StoreUnavailableError, match="database 'team_b'"):
        open_store(settings)  # a database that does not exist is named, not blamed on the network
    http = "chromadb.api.fastapi.FastAPI"
    admin = chromadb.AdminClient(
        ChromaSettings(chroma_api_impl=http, chroma_server_host=host, chroma_server_http_port=port)
    )
    admin.create_database("team_b", tenant="default_tenant")
    report = Ingestor(settings, open_store(settings), embedder).ingest_paths([small_corpus(tmp_path, 3)])
    assert report.new == 3
    team_b = chromadb.HttpClient(host=host, port=port, database="team_b")
    default = chromadb.HttpClient(host=host, port=port)
    assert team_b.get_collection("per-database").count() == report.total_chunks
    assert "per-database" not in [c.name for c in default.list_collections()]
