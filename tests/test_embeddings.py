"""The local embedder: torch (sentence-transformers) for documents, an ONNX export for queries; same vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.embeddings import LOCAL_MODEL_DIM, LocalEmbedding, build_embedder
from rag.settings import EmbeddingSettings

pytestmark = pytest.mark.slow

QUERIES = [
    "What is ClusterNS?",
    "Which methods mine hard negatives with clustering for sentence embeddings?",
    "x",
    "long " * 400,  # past the 256-piece window: both sides truncate alike
]


def test_onnx_query_embeddings_match_sentence_transformers(tmp_path: Path, embedder: LocalEmbedding) -> None:
    onnx = build_embedder(EmbeddingSettings(dtype="float32"), tmp_path / "models")
    assert isinstance(onnx, LocalEmbedding) and onnx.onnx_path is not None
    assert not onnx.onnx_path.exists()
    fp32 = LocalEmbedding(dtype="float32")
    for q in QUERIES:
        a = np.array(onnx.get_query_embedding(q))
        b = np.array(fp32.get_text_embedding(q))
        assert a.shape == (LOCAL_MODEL_DIM,)
        assert abs(np.linalg.norm(a) - 1) < 1e-4
        assert float(a @ b) > 0.9999, q
        # ... and agree with the bf16 document embeddings the index is built with.
        assert float(a @ np.array(embedder.get_text_embedding(q))) > 0.99, q
    assert onnx.onnx_path.is_file()
    assert list(onnx.onnx_path.parent.iterdir()) == [onnx.onnx_path]  # no temp file left behind


ABSTRACT = (
    "Contrastive learning has been widely studied in sentence representation learning. However, earlier works "
    "mainly focus on the construction of positive examples, while in-batch samples are often simply treated as "
    "negative examples. We propose ClusterNS, which incorporates clustering information into contrastive learning."
)


def test_openvino_documents_match_torch(embedder: LocalEmbedding) -> None:
    """Default documents path (OpenVINO) against sentence-transformers float32, on texts of mixed lengths batched
    together (padding must not leak into the pooled vectors) and in a different order than sorted by length."""
    assert embedder.uses_openvino()
    texts = ["x", f"title: ClusterNS\n\n{ABSTRACT}", ABSTRACT[:80], "long " * 400, ABSTRACT * 3, ""]
    ov = np.array(embedder.get_text_embedding_batch(texts))
    torch32 = LocalEmbedding(dtype="float32", backend="torch")
    assert not torch32.uses_openvino()
    ref = np.array(torch32.get_text_embedding_batch(texts))
    assert ov.shape == (len(texts), LOCAL_MODEL_DIM)
    assert np.allclose(np.linalg.norm(ov, axis=1), 1, atol=1e-3)
    cos = (ov * ref).sum(axis=1)
    assert cos.min() > 0.999, cos
    # One at a time gives the same vectors as in a batch.
    single = np.array([embedder.get_text_embedding(t) for t in texts[:3]])
    assert np.allclose(single, ov[:3], atol=2e-3)


def test_openvino_backend_needs_an_export_dir() -> None:
    with pytest.raises(ValueError, match="openvino"):
        LocalEmbedding(backend="openvino").get_text_embedding("x")
