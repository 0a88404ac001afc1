"""Ingest speed on the bundled corpus, each cold run in a new process and a fresh temporary data dir:

1. first run on a new machine: the one-time ONNX export of the model (needs torch) + model load + ingest;
2. cold ingest: model export cached (as after any earlier run), model not loaded, empty index;
3. ingest with the model already loaded (the pipeline alone), in the process of run 2;
4. re-ingest of the unchanged corpus.

Prints seconds, papers/s, chunks/s and peak memory.

    .venv/bin/python benchmarks/ingest_speed.py        # results are quoted in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def run(models: Path, work: Path, warm: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    from ingest.pipeline import Ingestor
    from rag.embeddings import build_embedder
    from rag.settings import Settings
    from rag.store import open_store

    out: dict[str, Any] = {"imports_s": time.perf_counter() - t0}
    settings = Settings(data_dir=work / "a", model_cache_dir=models)
    embedder = build_embedder(settings.embedding, settings.models_dir)
    t1 = time.perf_counter()
    cold = Ingestor(settings, open_store(settings), embedder).ingest_paths([settings.corpus_dir])
    out |= {"cold_s": time.perf_counter() - t1, "papers": cold.seen, "chunks": cold.chunks_written}
    if warm:
        settings_b = Settings(data_dir=work / "b", model_cache_dir=models)
        store_b = open_store(settings_b)
        t2 = time.perf_counter()
        again_warm = Ingestor(settings_b, store_b, embedder).ingest_paths([settings.corpus_dir])
        out["warm_s"] = time.perf_counter() - t2
        assert again_warm.chunks_written == cold.chunks_written
        t3 = time.perf_counter()
        again = Ingestor(settings_b, store_b).ingest_paths([settings.corpus_dir])
        out |= {"reingest_s": time.perf_counter() - t3, "reingest_written": again.chunks_written}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _subprocess(models: Path, work: Path, warm: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--one", "--models", str(models), "--work", str(work)]
    res = subprocess.run([*cmd, *(["--warm"] if warm else [])], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run(args.models, args.work, args.warm)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"  # empty: run 1 pays the one-time export, run 2 finds it
        first = _subprocess(models, Path(tmp) / "first", warm=False)
        cold = _subprocess(models, Path(tmp) / "cold", warm=True)
    papers, chunks, warm = cold["papers"], cold["chunks"], cold["warm_s"]
    print(f"imports                                 {cold['imports_s']:6.2f} s")
    print(f"first run on a new machine (+ export)   {first['cold_s']:6.2f} s  (peak RSS {first['peak_mb']:.0f} MB)")
    print(f"cold ingest, incl. model load           {cold['cold_s']:6.2f} s  ({papers} papers, {chunks} chunks)")
    print(
        f"ingest with the model loaded            {warm:6.2f} s  "
        f"({papers / warm:.1f} papers/s, {chunks / warm:.1f} chunks/s)"
    )
    print(
        f"re-ingest unchanged                     {cold['reingest_s']:6.2f} s  "
        f"(written {cold['reingest_written']}, unchanged corpus)"
    )
    print(f"peak RSS (cold + loaded + re-ingest)    {cold['peak_mb']:6.0f} MB")


if __name__ == "__main__":
    main()
