"""Ingest speed on the bundled corpus: cold ingest (model load + parse + chunk + embed + Chroma + BM25) and
re-ingest of the unchanged corpus, in a fresh temporary data dir. Prints papers/s, chunks/s and peak memory.

    .venv/bin/python benchmarks/ingest_speed.py        # results are quoted in docs/benchmarks.md
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    t0 = time.perf_counter()
    from ingest.pipeline import Ingestor
    from rag.embeddings import build_embedder
    from rag.settings import Settings
    from rag.store import open_store

    t_import = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        # 1. What a user sees: a new process, model not loaded, empty index.
        settings = Settings(data_dir=Path(tmp) / "a")
        embedder = build_embedder(settings.embedding, settings.models_dir)
        t1 = time.perf_counter()
        cold = Ingestor(settings, open_store(settings), embedder).ingest_paths([settings.corpus_dir])
        t_cold = time.perf_counter() - t1
        # 2. The pipeline alone: model already loaded, empty index.
        settings_b = Settings(data_dir=Path(tmp) / "b")
        store_b = open_store(settings_b)
        t2 = time.perf_counter()
        warm = Ingestor(settings_b, store_b, embedder).ingest_paths([settings.corpus_dir])
        t_warm = time.perf_counter() - t2
        # 3. Re-ingest of the unchanged corpus (no model needed).
        t3 = time.perf_counter()
        again = Ingestor(settings_b, store_b).ingest_paths([settings.corpus_dir])
        t_again = time.perf_counter() - t3
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"imports                          {t_import:6.2f} s")
    print(f"cold ingest, incl. model load    {t_cold:6.2f} s  ({cold.seen} papers, {cold.chunks_written} chunks)")
    print(
        f"ingest with the model loaded     {t_warm:6.2f} s  "
        f"({warm.seen / t_warm:.1f} papers/s, {warm.chunks_written / t_warm:.1f} chunks/s)"
    )
    print(
        f"re-ingest unchanged              {t_again:6.2f} s  "
        f"(written {again.chunks_written}, unchanged {again.unchanged})"
    )
    print(f"peak RSS                         {peak_mb:6.0f} MB")


if __name__ == "__main__":
    main()
