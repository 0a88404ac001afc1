"""Sentence-window vectors next to the chunk vectors, DEV split only (issue 11's "richer dense index" lever).

    .venv/bin/python benchmarks/sentence_windows.py

Each chunk also gets one vector per window of ``w`` consecutive sentences, made two ways:
- *late*: the mean of the chunk pass's own contextual token states over the window's word-pieces ("late chunking",
  Günther et al. 2024): no extra model pass at ingest, the window read in its abstract's context;
- *separate*: the window (after the chunk's "title: ..." line) embedded on its own, as a second ingest pass would.
A chunk's dense score is then its cosine combined with its best window's (max, or cosine + lam x window), folded
into papers as today, inside the same in-memory replica of the hybrid as benchmarks/own_words_variants.py. The
test split is never loaded. Results: docs/retrieval.md.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.own_words import ndcg
from benchmarks.own_words_variants import DenseSide, Hits, Index, Vectors, dense_only, dev_parser, hybrid, load_dev

LAST_HIDDEN = "encoder.layer.5.h2"  # the exported graph's last transformer layer output (rag/onnx_model.py)


def token_states(onnx_path: Path, texts: list[str], cache: Path) -> tuple[list[Any], list[Any]]:
    """Per text: its word-pieces' last-layer states (n, 384) and the tokenizer's encoding (offsets)."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from rag.embeddings import local_model_dir
    from rag.onnx_model import model_tokenizer

    tok = model_tokenizer(local_model_dir())
    encodings = tok.encode_batch(texts)
    key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
    path = cache / f"states-{key}.npz"
    if path.exists():
        data = np.load(path)
        flat, bounds = data["flat"], data["bounds"]
        return [flat[bounds[i] : bounds[i + 1]] for i in range(len(texts))], encodings
    model = onnx.load(str(onnx_path))
    model.graph.output.append(helper.make_tensor_value_info(LAST_HIDDEN, TensorProto.FLOAT, ["batch", "seq", 384]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out: list[Any] = [None] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
    t0 = time.perf_counter()
    for start in range(0, len(order), 16):
        rows = order[start : start + 16]
        width = max(len(encodings[i].ids) for i in rows)
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, i in enumerate(rows):
            ids[r, : len(encodings[i].ids)] = encodings[i].ids
            mask[r, : len(encodings[i].ids)] = 1
        states = session.run([LAST_HIDDEN], {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
        for r, i in enumerate(rows):
            out[i] = states[r, : len(encodings[i].ids)].copy()
    print(f"token states of {len(texts)} chunks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    bounds = np.cumsum([0] + [len(s) for s in out])
    np.savez(path, flat=np.concatenate(out), bounds=bounds)
    return out, encodings


def sentence_spans(embedded: str) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Character spans of the "title: ..." line and of each body sentence in a chunk's embedded text."""
    from rag.sentences import split_sentences

    head, sep, body = embedded.partition("\n\n")
    offset = len(head) + len(sep)
    spans, pos = [], 0
    for s in split_sentences(body):
        at = body.find(s, pos)
        if at < 0:
            continue
        spans.append((offset + at, offset + at + len(s)))
        pos = at + len(s)
    return (0, len(head)), spans


def windows(index: Index, width: int) -> list[tuple[int, tuple[int, int], list[tuple[int, int]]]]:
    """(chunk row, title span, the window's sentence spans) for every window of ``width`` sentences."""
    out = []
    for row, text in enumerate(index.texts):
        title, spans = sentence_spans(text)
        if len(spans) <= width:  # the chunk itself is the only window
            continue
        for j in range(len(spans) - width + 1):
            out.append((row, title, spans[j : j + width]))
    return out


def late_vectors(states: list[Any], encodings: list[Any], wins: list[Any], with_title: bool) -> Any:
    import numpy as np

    vecs = np.zeros((len(wins), 384), dtype=np.float32)
    for k, (row, title, spans) in enumerate(wins):
        offs = encodings[row].offsets
        keep = [
            i
            for i, (a, b) in enumerate(offs)
            if b > a and any(s <= a < e for s, e in spans + ([title] if with_title else []))
        ]
        v = states[row][keep].mean(0)
        vecs[k] = v / np.linalg.norm(v)
    return vecs


def separate_vectors(index: Index, wins: list[Any], embed: Vectors, cache: Path) -> Any:
    import numpy as np

    texts = [
        index.texts[row][: title[1]] + "\n\n" + " ".join(index.texts[row][s:e] for s, e in spans)
        for row, title, spans in wins
    ]
    key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12]
    path = cache / f"windows-{key}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    vecs = np.asarray(embed.embedder.get_text_embedding_batch(texts), dtype=np.float32)
    print(f"embedded {len(texts)} windows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    np.save(path, vecs)
    return vecs


def with_windows(rows: Any, vecs: Any, combine: str, lam: float) -> DenseSide:
    """Chunk cosines combined with each chunk's best window cosine (``max``, or ``add``: cos + lam x window)."""
    import numpy as np

    def run(index: Index, vec: Any, n: int) -> Hits:
        chunk = index.scores(vec)
        best = np.full(len(chunk), -1.0, dtype=np.float32)
        np.maximum.at(best, rows, vecs @ vec)
        has = best > -1.0
        if combine == "max":
            score = np.where(has, np.maximum(chunk, best), chunk)
        else:
            score = chunk + lam * np.where(has, best, chunk)
        return index.dense(vec, n, scores=score)

    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = dev_parser(__doc__)
    parser.add_argument("--separate", action="store_true", help="also embed the windows on their own (slow)")
    args = parser.parse_args(argv)

    import numpy as np

    from rag.onnx_model import onnx_file_name

    dev = load_dev(args.cache)
    embed, sets, base = dev.embed, dev.sets, dev.index
    states, encodings = token_states(dev.settings.models_dir / onnx_file_name(), base.texts, args.cache)

    rankers: dict[str, Callable[[str], list[str]]] = {
        "dense (chunks, max per paper)": lambda q: dense_only(base, embed.one(q)),
        "base: hybrid (default)": lambda q: hybrid(base, q, embed.one(q)),
    }

    def add(label: str, side: DenseSide) -> None:
        rankers[f"{label}, dense"] = lambda q: dense_only(base, embed.one(q), side)
        rankers[label] = lambda q: hybrid(base, q, embed.one(q), side)

    for width in (1, 2):
        wins = windows(base, width)
        rows = np.array([w[0] for w in wins])
        for with_title in (False, True):
            vecs = late_vectors(states, encodings, wins, with_title)
            kind = f"late {width}-sentence windows{' + title' if with_title else ''}"
            add(f"{kind}: max", with_windows(rows, vecs, "max", 0))
            for lam in (0.3, 1.0):
                add(f"{kind}: cos + {lam} x best window", with_windows(rows, vecs, "add", lam))
        if args.separate and width == 2:
            vecs = separate_vectors(base, wins, embed, args.cache)
            add("separate 2-sentence windows + title: max", with_windows(rows, vecs, "max", 0))
            add("separate 2-sentence windows + title: cos + 0.3 x best window", with_windows(rows, vecs, "add", 0.3))
    header = "| variant, dev split | " + " | ".join(f"{s} ({len(q)})" for s, q in sets.items()) + " |"
    print(header + "\n|---|" + "---|" * len(sets))
    for name, rank in rankers.items():
        row = [ndcg(qs, rank) for qs in sets.values()]
        print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in row) + " |", flush=True)


if __name__ == "__main__":
    main()
