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

from ingest.pipeline import Ingestor
from rag.lexical import LexicalIndex, fingerprint
from rag.settings import Settings
from rag.store import StoreUnavailableError, open_store
from tests.conftest import free_port
from tests.test_ingest import small_corpus, stored_ids

pytestmark = [pytest.mark.slow, pytest.mark.server]


def server_settings(tmp_path: Path, host: str, port: int, collection: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "idx",
        store={"mode": "server", "host": host, "port": port, "collection": collection},  # type: ignore[arg-type]
    )


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
        [sys.executable, "-m", "rag", "status"], env=env, text=True, capture_output=True, timeout=120, check=False
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
        [sys.executable, "-m", "rag", "ingest"], env=env, text=True, capture_output=True, timeout=120, check=False
    )
    assert res.returncode == 2
    assert "cannot open Chroma" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - start < 60
