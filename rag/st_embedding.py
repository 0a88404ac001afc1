"""Any local sentence-transformers model directory as the embedder (``embedding.provider = "sentence-transformers"``).

>>> cfg = EmbeddingSettings(provider="sentence-transformers", model_path=Path("/models/bge-small-en-v1.5"))
>>> st_identity(cfg.model_path)     # ('sentence-transformers/bge-small-en-v1.5@1a2b3c4d5e6f', 384): no torch import
>>> build_embedder(cfg).get_query_embedding("contrastive sentence embeddings")

The model is read from the directory only (nothing is downloaded) and loaded on first use: torch and
sentence-transformers (the ``dev`` extra) are imported then, never on the default path. Queries and documents go
through ``encode_query`` / ``encode_document``, so a model that ships query/document prompts (E5, BGE, nomic) gets
them as its authors intended.

The identity recorded on the collection names the directory *and* its contents (a digest of its config files and
the head and tail of its weight files), so a fine-tuned copy saved under the same name is a different model, and
the dimension is read from the module configs without loading the weights.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "SentenceTransformerEmbedding",
    "check_model_dir",
    "load_sentence_transformers",
    "load_st_model",
    "st_identity",
]

_DIGEST_BYTES = 1 << 20  # read from each end of a weight file: cheap, and any fine-tune changes them
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.onnx")
_CONFIGS = ("config.json", "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def check_model_dir(path: Path | None, setting: str) -> Path:
    """``path`` as an existing model directory, or ValueError naming the setting to fix."""
    if path is None:
        raise ValueError(f"{setting} is not set: point it at a local model directory (nothing is downloaded)")
    path = Path(path).expanduser()
    if not (path / "config.json").is_file():
        raise ValueError(f"{setting}={path} is not a model directory (no config.json there)")
    return path


def load_sentence_transformers() -> Any:
    """The ``sentence_transformers`` module, or ImportError with the install hint."""
    try:
        import sentence_transformers
    except ImportError as exc:  # pragma: no cover - the dev extra is installed wherever tests run
        raise ImportError("this setting needs torch and sentence-transformers: pip install -e '.[st]'") from exc
    return sentence_transformers


def load_st_model(kind: str, path: Path, threads: int = 0) -> Any:
    """A sentence-transformers ``SentenceTransformer`` or ``CrossEncoder`` (``kind``) from ``path`` on the CPU, with
    torch limited to ``threads`` when set (oversubscribed OpenMP threads cost many times over on a busy machine)."""
    st = load_sentence_transformers()
    if threads:
        import torch

        torch.set_num_threads(threads)
    return getattr(st, kind)(str(path), device="cpu", local_files_only=True)


def _digest(path: Path) -> str:
    h = hashlib.sha1()
    for name in _CONFIGS:
        if (path / name).is_file():
            h.update(name.encode() + b"\0" + (path / name).read_bytes())
    weights = sorted({w for pattern in _WEIGHTS for w in path.rglob(pattern)})
    for weight in weights:
        size = weight.stat().st_size
        h.update(f"{weight.relative_to(path)}\0{size}\0".encode())
        with weight.open("rb") as f:
            h.update(f.read(_DIGEST_BYTES))
            if size > 2 * _DIGEST_BYTES:
                f.seek(size - _DIGEST_BYTES)
                h.update(f.read(_DIGEST_BYTES))
    return h.hexdigest()[:12]


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


def _dimension(path: Path) -> int:
    """The output size from the module configs: the transformer's hidden size, then pooling and Dense layers."""
    config = _read(path / "config.json")
    dim = config.get("hidden_size") or config.get("d_model") or config.get("dim")
    modules = json.loads((path / "modules.json").read_text()) if (path / "modules.json").is_file() else []
    for module in modules:
        kind, sub = str(module.get("type", "")), path / str(module.get("path", ""))
        if kind.endswith(".Transformer") and (sub / "config.json").is_file() and sub != path:
            inner = _read(sub / "config.json")
            dim = inner.get("hidden_size") or inner.get("d_model") or dim
        elif kind.endswith(".Pooling"):
            pooling = _read(sub / "config.json")
            width = pooling.get("word_embedding_dimension", dim)
            modes = sum(bool(pooling.get(m)) for m in _POOLING_MODES) or 1
            dim = int(width) * modes if width else dim
        elif kind.endswith(".Dense"):
            dim = _read(sub / "config.json").get("out_features", dim)
    if not isinstance(dim, int) or dim <= 0:
        raise ValueError(f"cannot tell the vector size of the model at {path} from its config files")
    return dim


def st_identity(path: Path | None) -> tuple[str, int]:
    """(model id, dimension) of the model directory at ``path``, read from its files (no torch import)."""
    path = check_model_dir(path, "RAG_EMBEDDING__MODEL_PATH")
    return f"sentence-transformers/{path.resolve().name}@{_digest(path)}", _dimension(path)


class SentenceTransformerEmbedding:
    """A local sentence-transformers model: normalised vectors, loaded on first use (thread-safe)."""

    def __init__(self, model_path: Path, threads: int = 0, batch_size: int = 16) -> None:
        model_id, dim = st_identity(model_path)
        self.model_name = model_id
        self.model_path = Path(model_path).expanduser()
        self.dim = dim
        self.threads = threads
        self.model_batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> Any:
        """Load the model now (it loads on first use otherwise); safe to call from a background thread."""
        with self._lock:
            if self._model is None:
                self._model = load_st_model("SentenceTransformer", self.model_path, self.threads)
            return self._model

    def _encode(self, texts: list[str], query: bool) -> list[list[float]]:
        model = self.load()
        encode = model.encode_query if query else model.encode_document
        vectors = encode(texts, batch_size=self.model_batch_size, normalize_embeddings=True, convert_to_numpy=True)
        if vectors.shape[-1] != self.dim:
            raise ValueError(
                f"the model at {self.model_path} returned {vectors.shape[-1]}-dimensional vectors, but its config "
                f"files say {self.dim}"
            )
        return vectors.tolist()  # type: ignore[no-any-return]

    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[list[float]]:
        return self._encode(list(texts), query=False)

    def get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text], query=False)[0]

    def get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query], query=True)[0]
