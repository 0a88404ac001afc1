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
        settings = Settings(data_dir=Path(tmp))
        store = open_store(settings)
        t1 = time.perf_counter()
        embedder = build_embedder(settings.embedding)
        embedder.get_text_embedding("warm up")  # loads the model
        t_model = time.perf_counter() - t1
        t2 = time.perf_counter()
        cold = Ingestor(settings, store, embedder).ingest_paths([settings.corpus_dir])
        t_cold = time.perf_counter() - t2
        t3 = time.perf_counter()
        again = Ingestor(settings, store).ingest_paths([settings.corpus_dir])
        t_again = time.perf_counter() - t3
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"imports                 {t_import:6.2f} s")
    print(f"model load              {t_model:6.2f} s")
    print(f"cold ingest             {t_cold:6.2f} s  ({cold.seen} papers, {cold.chunks_written} chunks)")
    print(f"  throughput            {cold.seen / t_cold:6.1f} papers/s, {cold.chunks_written / t_cold:.1f} chunks/s")
    print(f"cold total (load+ingest){t_model + t_cold:6.2f} s")
    print(f"re-ingest unchanged     {t_again:6.2f} s  (written {again.chunks_written}, unchanged {again.unchanged})")
    print(f"peak RSS                {peak_mb:6.0f} MB")


if __name__ == "__main__":
    main()
