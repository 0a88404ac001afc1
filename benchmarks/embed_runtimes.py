"""onnxruntime vs OpenVINO for the bundled model's document embeddings, side by side in one process.

Embeds the bundled corpus's 1,385 chunk texts as `rag ingest` does (write batches of 256, each sorted by length
and padded per model batch) with every runtime over the same ONNX export, and prints seconds and the lowest
cosine to sentence-transformers float32 (needs the `dev` extra; OpenVINO rows need `pip install openvino`).

    .venv/bin/python benchmarks/embed_runtimes.py [--batch 16] [--threads 0]   # quoted in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

Infer = Callable[[Any, Any], Any]


def chunk_texts() -> list[str]:
    from ingest.chunk import chunk_paper
    from ingest.dedup import dedup
    from ingest.formats import read_paths
    from rag.embeddings import wordpiece_counter
    from rag.settings import Settings

    settings = Settings()
    read, _ = read_paths([settings.corpus_dir])
    cfg, count = settings.chunking, wordpiece_counter()
    return [n.embedded for p in dedup(read.records) for n in chunk_paper(p, cfg.max_tokens, count, cfg.prefix_title)]


def batches(tok: Any, texts: list[str], size: int, write_batch: int = 256) -> Iterator[tuple[list[int], Any, Any]]:
    for w in range(0, len(texts), write_batch):
        enc = tok.encode_batch(texts[w : w + write_batch])
        order = sorted(range(len(enc)), key=lambda i: -len(enc[i].ids))
        for s in range(0, len(order), size):
            rows = order[s : s + size]
            ids = np.zeros((len(rows), max(len(enc[i].ids) for i in rows)), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                ids[r, : len(enc[i].ids)] = enc[i].ids
                mask[r, : len(enc[i].ids)] = 1
            yield [w + i for i in rows], ids, mask


def ort_session(path: Path, threads: int) -> Infer:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]


def openvino_model(path: Path, precision: str, threads: int) -> Infer:
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
    request, out = compiled.create_infer_request(), compiled.output(0)
    return lambda ids, mask: request.infer({"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=16, help="texts per forward pass")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: the runtime's default)")
    args = ap.parse_args()

    import importlib.util

    from sentence_transformers import SentenceTransformer

    from rag.embeddings import local_model_dir
    from rag.onnx_model import export_onnx, model_tokenizer

    texts, tok = chunk_texts(), model_tokenizer(local_model_dir())
    t0 = time.perf_counter()
    ref = SentenceTransformer(str(local_model_dir()), device="cpu").encode(
        texts, batch_size=16, normalize_embeddings=True
    )
    print(f"{'sentence-transformers fp32 (reference)':40s} {time.perf_counter() - t0:7.1f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        fused = export_onnx(local_model_dir(), Path(tmp) / "fused.onnx")
        runtimes: dict[str, Callable[[], Infer]] = {
            "onnxruntime fp32, fused export": lambda: ort_session(fused, args.threads)
        }
        if importlib.util.find_spec("openvino"):
            runtimes |= {
                f"openvino {p}, same export": lambda p=p: openvino_model(fused, p, args.threads)  # type: ignore[misc]
                for p in ("f32", "bf16")
            }
        for name, make in runtimes.items():
            t1 = time.perf_counter()
            infer = make()
            loaded = time.perf_counter() - t1
            out = np.zeros((len(texts), ref.shape[1]), dtype=np.float32)
            t2 = time.perf_counter()
            for rows, ids, mask in batches(tok, texts, args.batch):
                out[rows] = infer(ids, mask)
            cos = float((out * ref).sum(axis=1).min())
            print(
                f"{name:40s} {time.perf_counter() - t2:7.1f} s  (load {loaded:.1f} s, cosine min {cos:.7f})", flush=True
            )


if __name__ == "__main__":
    main()
