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
