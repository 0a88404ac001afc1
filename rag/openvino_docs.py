"""Document embeddings of the bundled MiniLM through OpenVINO: the ONNX export of ``rag/onnx_query.py`` compiled
for the CPU, bf16 where the CPU has native bf16.

Why not torch: on this 2-core AVX512-BF16 machine the bundled corpus's 1,385 chunks (~249 k word-pieces) took
26.3 s in torch bf16 (sentence-transformers, length-sorted batches of 16) and 18.1 s here (batches of 32), with
cosine >= 0.99997 to torch float32 (torch bf16: >= 0.998). sentence-transformers' own OpenVINO backend needs
``optimum-intel``, whose releases pin an older transformers than the installed one, so the few lines of batching
live here: tokenize with the model's own tokenizer, sort by length, pad each batch to its longest text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["OpenVinoDocumentEncoder", "openvino_available"]


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoDocumentEncoder:
    """Normalised embeddings for many texts at once (length-sorted batches); not for one-off queries."""

    def __init__(self, onnx_path: Path, model_dir: Path, bf16: bool, threads: int = 0, batch_size: int = 32) -> None:
        import openvino as ov

        from rag.onnx_query import model_tokenizer

        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self._compiled = core.compile_model(core.read_model(str(onnx_path)), "CPU", config)
        self._tok = model_tokenizer(model_dir)
        self._batch_size = batch_size

    def encode(self, texts: list[str]) -> Any:
        """A float32 array (len(texts), dim) of L2-normalised vectors, in the order of ``texts``."""
        import numpy as np

        encodings = self._tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out: Any = None
        request = self._compiled.create_infer_request()
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            result = request.infer({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
            vectors = result[self._compiled.output(0)]
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        return out
