"""Scale benchmark: ingest and query cost at 10^3 -> 10^6 synthetic abstracts (numbers in docs/scale.md).

    .venv/bin/python benchmarks/scale.py --sizes 1000,10000,100000 --work /tmp/rag-scale --out docs/scale
    .venv/bin/python benchmarks/scale.py --embed-throughput 600      # the real bundled model, papers/s

Corpora come from benchmarks/synthetic_corpus.py (real sentences recombined). Indexing a million abstracts with
the real model would take ~11 h on 2 cores, so the index-and-query runs use the feature-hashing embedding
(``embedding.provider = "hash"``, labelled in every output): Chroma, BM25, fusion, folding and extractive
answering do exactly the work they do in production; only the vectors are cheaper to make. The real model's
throughput is measured separately (``--embed-throughput``). Each phase runs in its own process so its peak
memory (ru_maxrss) is its own: "ingest" is `rag ingest`, "serve" is an app process from start to warm queries.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rag.types import Mode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUERIES = 200
MODES = (Mode.DENSE, Mode.BM25, Mode.HYBRID)


def _settings(work: Path, size: int, provider: str = "hash") -> Any:
    """Embedded Chroma in the work dir, or, with RAG_STORE__MODE=server in the environment (``--server``), a
    collection per size on that server (the BM25 index stays in the work dir either way)."""
    from rag.settings import Settings

    settings = Settings(data_dir=work / f"index-{size}", embedding={"provider": provider})  # type: ignore[arg-type]
    if settings.store.mode == "server":
        settings.store.collection = f"scale-{size}"  # one server, one collection per size
    return settings


def _corpus(work: Path, size: int) -> Path:
    from benchmarks.synthetic_corpus import write_corpus
    from rag.settings import Settings

    path = work / f"corpus-{size}.jsonl"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        write_corpus(path, size, Settings().corpus_dir)
    return path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20 if path.exists() else 0.0


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def phase_ingest(work: Path, size: int, keep: bool = False) -> dict[str, Any]:
    from ingest.pipeline import Ingestor
    from rag.embeddings import build_embedder
    from rag.lexical_sync import rebuild_lexical
    from rag.store import open_store

    corpus = _corpus(work, size)
    settings = _settings(work, size)
    if not keep:  # a cold ingest, unless resuming a killed one
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    store = open_store(settings)
    if not keep and settings.store.mode == "server":
        store.drop()
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        if total and (done == total or done % max(1, total // 10) < settings.store.write_batch // 2):
            print(f"  [{size}] {done}/{total} papers, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    report = Ingestor(settings, store, build_embedder(settings.embedding)).ingest_paths([corpus], None, progress)
    total = time.perf_counter() - start
    t = time.perf_counter()
    rebuild_lexical(store, settings.bm25_path, reuse=False)  # what a new worker pays to build BM25 from Chroma
    lexical_rebuild = time.perf_counter() - t
    return {
        "papers": report.seen,
        "chunks": report.total_chunks,
        "new": report.new,
        "rejected": len(report.rejected),
        "ingest_s": round(total, 1),
        "papers_per_s": round(report.seen / total, 1),
        "bm25_rebuild_from_chroma_s": round(lexical_rebuild, 1),
        "ingest_peak_rss_mb": round(_peak_rss_mb()),
        "chroma_disk_mb": round(_du_mb(settings.chroma_path)),
        "bm25_disk_mb": round(_du_mb(settings.bm25_path)),
    }


def _queries(work: Path, size: int, n: int = QUERIES) -> list[str]:
    """Half curated questions (people's wording), half 8-word windows of synthetic abstracts (corpus wording)."""
    curated = [
        json.loads(line)["question"] for line in (ROOT / "evals/datasets/curated.jsonl").read_text().splitlines()
    ]
    rng = random.Random(1)
    windows: list[str] = []
    with (work / f"corpus-{size}.jsonl").open() as f:
        for i, line in enumerate(f):
            if i >= 5000:
                break
            if rng.random() < 0.05:
                words = json.loads(line)["abstract"].split()
                s = rng.randint(0, max(0, len(words) - 8))
                windows.append(" ".join(words[s : s + 8]))
    return (rng.sample(curated, min(n // 2, len(curated))) + windows)[:n]


def phase_serve(work: Path, size: int) -> dict[str, Any]:
    from rag.assistant import Assistant

    settings = _settings(work, size)
    queries = _queries(work, size)
    t = time.perf_counter()
    assistant = Assistant.open(settings, ingest_if_empty=False)
    assistant.retrieve(queries[0], k=10)  # the first query loads Chroma's HNSW segment
    start_s = time.perf_counter() - t
    out: dict[str, Any] = {"start_s": round(start_s, 1), "queries": len(queries)}
    for mode in MODES:
        for q in queries[:10]:
            assistant.retrieve(q, k=10, mode=mode)  # type: ignore[arg-type]
        times = []
        for q in queries:
            t = time.perf_counter()
            assistant.retrieve(q, k=10, mode=mode)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        out[f"{mode}_p50_ms"] = round(statistics.median(times), 1)
        out[f"{mode}_p95_ms"] = round(_pct(times, 0.95), 1)
    times = []
    for q in queries:
        t = time.perf_counter()
        assistant.ask(q)
        times.append((time.perf_counter() - t) * 1000)
    out["ask_p50_ms"] = round(statistics.median(times), 1)
    out["ask_p95_ms"] = round(_pct(times, 0.95), 1)
    out["serve_peak_rss_mb"] = round(_peak_rss_mb())
    return out


def embed_throughput(work: Path, n: int) -> dict[str, Any]:
    """Cold ingest of ``n`` synthetic papers with the real bundled model (model load excluded)."""
    from ingest.pipeline import Ingestor
    from rag.embeddings import build_embedder
    from rag.store import open_store

    corpus = _corpus(work, n)
    settings = _settings(work, n, provider="local")
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    embedder = build_embedder(settings.embedding, settings.models_dir)  # as `rag ingest` uses
    embedder.get_text_embedding_batch(["warm up"])
    t = time.perf_counter()
    report = Ingestor(settings, open_store(settings), embedder).ingest_paths([corpus])
    secs = time.perf_counter() - t
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    return {
        "papers": report.seen,
        "chunks": report.total_chunks,
        "seconds": round(secs, 1),
        "papers_per_s": round(report.seen / secs, 1),
        "chunks_per_s": round(report.total_chunks / secs, 1),
    }


def _run_phase(phase: str, work: Path, size: int) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--work", str(work), "--sizes", str(size)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    keys = (
        ("dense_p50_ms", "dense p50"),
        ("bm25_p50_ms", "BM25 p50"),
        ("hybrid_p50_ms", "hybrid p50"),
        ("hybrid_p95_ms", "hybrid p95"),
        ("ask_p50_ms", "extractive ask p50"),
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for store, style in (("embedded", "-"), ("server", "--")):
        sub = sorted((r for r in rows if _store(r) == store), key=lambda r: r["size"])
        if not sub:
            continue
        for (key, label), color in zip(keys, colors, strict=False):
            ax.plot(
                [r["size"] for r in sub],
                [r[key] for r in sub],
                style,
                marker="o" if store == "embedded" else "s",
                color=color,
                label=f"{label} ({store})",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("papers in the index")
    ax.set_ylabel("warm latency (ms)")
    ax.set_title("Query latency vs corpus size (2 CPU cores, hash embedding)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _store(row: dict[str, Any]) -> str:
    return "server" if str(row.get("store", "embedded")).startswith("server") else "embedded"


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| papers | store | chunks | ingest papers/s | BM25 rebuild from Chroma s | disk Chroma + BM25 MB "
        "| ingest peak MB | app start s | app peak MB | dense p50/p95 ms | BM25 p50/p95 ms | hybrid p50/p95 ms "
        "| ask p50/p95 ms |"
    )
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {_store(r)} | {r['chunks']:,} | {r['papers_per_s']} "
            f"| {r['bm25_rebuild_from_chroma_s']} "
            f"| {r['chroma_disk_mb']} + {r['bm25_disk_mb']} | {r['ingest_peak_rss_mb']} | {r['start_s']} "
            f"| {r['serve_peak_rss_mb']} | {r['dense_p50_ms']} / {r['dense_p95_ms']} "
            f"| {r['bm25_p50_ms']} / {r['bm25_p95_ms']} | {r['hybrid_p50_ms']} / {r['hybrid_p95_ms']} "
            f"| {r['ask_p50_ms']} / {r['ask_p95_ms']} |"
        )
    return "\n".join(lines)


def write_results(rows: list[dict[str, Any]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "scale.md").write_text(markdown(rows) + "\n")
    plot(rows, out / "scale.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000", help="comma-separated corpus sizes")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-scale"), help="corpora and indexes (not committed)")
    ap.add_argument("--out", type=Path, default=None, help="write scale.json, scale.md and scale.png here")
    ap.add_argument("--phase", choices=["ingest", "serve"], help="run one phase for the first size (JSON on stdout)")
    ap.add_argument("--keep", action="store_true", help="ingest phase: resume into the existing index (not cold)")
    ap.add_argument("--embed-throughput", type=int, default=0, help="measure the real model on N papers instead")
    ap.add_argument("--server", default=None, metavar="HOST:PORT", help="use a `chroma run` server, not embedded")
    ap.add_argument(
        "--append",
        type=Path,
        default=None,
        metavar="ROW.json",
        help="add a row measured phase by phase (ingest and serve JSON merged) to --out's scale.json and redraw",
    )
    args = ap.parse_args()
    if args.append:
        if args.out is None:
            ap.error("--append needs --out")
        old = json.loads((args.out / "scale.json").read_text()) if (args.out / "scale.json").exists() else []
        new = json.loads(args.append.read_text())
        merged = [r for r in old if (r["size"], _store(r)) != (new["size"], _store(new))] + [new]
        write_results(sorted(merged, key=lambda r: (_store(r), r["size"])), args.out)
        return
    if args.server:  # phases run in subprocesses: the settings reach them through the environment
        host, port = args.server.rsplit(":", 1)
        os.environ.update({"RAG_STORE__MODE": "server", "RAG_STORE__HOST": host, "RAG_STORE__PORT": port})
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.phase:
        if args.phase == "ingest":
            print(json.dumps(phase_ingest(args.work, sizes[0], args.keep)))
        else:
            print(json.dumps(phase_serve(args.work, sizes[0])))
        return
    if args.embed_throughput:
        print(json.dumps(embed_throughput(args.work, args.embed_throughput)))
        return
    rows: list[dict[str, Any]] = []
    for size in sizes:
        row: dict[str, Any] = {"size": size, "embedding": "hash (scale run; not the real model)"}
        row["store"] = f"server {args.server}" if args.server else "embedded"
        row.update(_run_phase("ingest", args.work, size))
        row.update(_run_phase("serve", args.work, size))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(markdown(rows))
    if args.out:
        write_results(rows, args.out)


if __name__ == "__main__":
    main()
