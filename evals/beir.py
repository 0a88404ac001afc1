"""BEIR-format datasets: load one, index its corpus into its own collection, score retrieval per mode.

A BEIR dataset directory holds ``corpus.jsonl`` (``{"_id", "title", "text"}`` per line), ``queries.jsonl``
(``{"_id", "text"}``) and ``qrels/<split>.tsv`` (a header line, then ``query-id<TAB>corpus-id<TAB>score``).

    python -m evals.run --beir path/to/scifact --out beir-out            # bm25, dense, hybrid
    python -m evals.run --beir path/to/scifact --modes hybrid --data-dir .rag --out beir-out

Semantics follow BEIR's evaluation (pytrec_eval, i.e. trec_eval): a score > 0 is relevant with that grade (nDCG
gain = grade), a score <= 0 is judged non-relevant; the queries scored are those with a judgment in the split
(a query with only non-relevant judgments scores 0); a retrieved document whose id equals the query's id is
dropped (BEIR's ``ignore_identical_ids``, which matters for ArguAna and Quora). Metrics come from ranx.

The corpus is ingested with the project's own pipeline (``ingest.pipeline.Ingestor``, the ``beir`` reader: a
document's ``_id`` becomes its ``paper_id``, so qrels map onto retrieved papers directly) into a collection named
after the dataset (``beir-<name>``) in a data dir of its own (``--data-dir``, else ``<out>/index``, else a temp
dir): the bundled ``papers`` collection is never read or written, even when ``--data-dir`` is the bundled index's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.data import DatasetError
from evals.metrics import mean, percentile, ranx_scores
from evals.provenance import git_commit, json_safe
from rag.types import Mode

__all__ = [
    "BEIR_METRICS",
    "BEIR_MODES",
    "BeirDataset",
    "BeirResult",
    "beir_collection",
    "beir_settings",
    "format_table",
    "index_beir",
    "load_beir",
    "run_beir",
    "write_beir_results",
]

BEIR_METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
BEIR_MODES: tuple[Mode, ...] = (Mode.BM25, Mode.DENSE, Mode.HYBRID)
BEIR_DEPTH = 100  # documents ranked per query (recall@100 needs 100)
_ID_FORBIDDEN = "#"  # chunk ids are "<paper_id>#<stamp>#<n>" and BM25 hits are mapped back by splitting on "#"


@dataclass(frozen=True)
class BeirDataset:
    """A loaded BEIR dataset: ``corpus`` id -> (title, text), ``queries`` id -> text (all of them), ``qrels`` the
    split's judgments qid -> doc id -> score (as written: non-relevant ones included)."""

    name: str
    path: Path
    split: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def scored_queries(self) -> list[str]:
        """The queries that are evaluated: those with at least one judgment in the split (BEIR semantics)."""
        return list(self.qrels)

    @property
    def relevant(self) -> dict[str, set[str]]:
        return {q: {d for d, s in docs.items() if s > 0} for q, docs in self.qrels.items()}


# --------------------------------------------------------------------------------------------------- loading


def _lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line; CRLF/CR line endings and a UTF-8 BOM tolerated."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing (a BEIR dataset needs corpus.jsonl, queries.jsonl, qrels/<split>.tsv)")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: invalid UTF-8") from exc
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _doc_id(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DatasetError(f"{where}: '_id' must be a string (or integer), got {value!r}")
    doc_id = str(value).strip()
    if not doc_id:
        raise DatasetError(f"{where}: empty '_id'")
    return doc_id


def _json_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for n, line in _lines(path):
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(obj, dict):
            raise DatasetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        rows.append((where, obj))
    return rows


def _load_corpus(path: Path) -> dict[str, tuple[str, str]]:
    corpus: dict[str, tuple[str, str]] = {}
    for where, obj in _json_rows(path):
        if "_id" not in obj:
            raise DatasetError(f"{where}: missing '_id'")
        doc_id = _doc_id(obj["_id"], where)
        if _ID_FORBIDDEN in doc_id:
            raise DatasetError(f"{where}: '_id' {doc_id!r} contains '#', which the index uses inside chunk ids")
        if doc_id in corpus:
            raise DatasetError(f"{where}: duplicate '_id' {doc_id!r}")
        title, text = obj.get("title", ""), obj.get("text")
        if not isinstance(text, str):
            raise DatasetError(f"{where}: 'text' must be a string, got {text!r}"[:200])
        if title is None:
            title = ""
        if not isinstance(title, str):
            raise DatasetError(f"{where}: 'title' must be a string, got {title!r}"[:200])
        corpus[doc_id] = (title, text)
    if not corpus:
        raise DatasetError(f"{path}: no documents")
    return corpus


def _load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for where, obj in _json_rows(path):
        if "_id" not in obj:
            raise DatasetError(f"{where}: missing '_id'")
        qid = _doc_id(obj["_id"], where)
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{where}: query {qid!r} has no 'text'")
        if qid in queries:
            raise DatasetError(f"{where}: duplicate query '_id' {qid!r}")
        queries[qid] = text.strip()
    return queries


def _load_qrels(path: Path, queries: dict[str, str], corpus: dict[str, tuple[str, str]]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for i, (n, line) in enumerate(_lines(path)):
        where = f"{path}:{n}"
        fields = next(csv.reader(io.StringIO(line), delimiter="\t"))
        if len(fields) != 3:
            raise DatasetError(
                f"{where}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}: {line!r}"
            )
        qid, doc_id, raw = (f.strip() for f in fields)
        if i == 0 and not re.fullmatch(r"-?\d+", raw):
            continue  # the header line ("query-id corpus-id score")
        if not re.fullmatch(r"-?\d+", raw):
            raise DatasetError(f"{where}: score must be an integer, got {raw!r}")
        if qid not in queries:
            raise DatasetError(f"{where}: query-id {qid!r} is not in queries.jsonl")
        if doc_id not in corpus:
            raise DatasetError(f"{where}: corpus-id {doc_id!r} is not in corpus.jsonl")
        if doc_id in qrels.get(qid, {}):
            raise DatasetError(f"{where}: duplicate judgment for ({qid!r}, {doc_id!r})")
        qrels.setdefault(qid, {})[doc_id] = int(raw)
    if not qrels:
        raise DatasetError(f"{path}: no judgments")
    return qrels


def load_beir(path: Path, split: str = "test") -> BeirDataset:
    """Load and check a BEIR dataset dir. Raises DatasetError naming ``file:line`` for the first problem."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetError(f"{path}: not a directory (expected a BEIR dataset dir)")
    corpus = _load_corpus(path / "corpus.jsonl")
    queries = _load_queries(path / "queries.jsonl")
    qrels = _load_qrels(path / "qrels" / f"{split}.tsv", queries, corpus)
    return BeirDataset(path.resolve().name, path, split, corpus, queries, qrels)


# --------------------------------------------------------------------------------------------------- indexing


def beir_collection(name: str) -> str:
    """A valid Chroma collection name for the dataset: ``beir-<slug>`` (3-63 chars, alphanumeric ends)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "dataset"
    return f"beir-{slug}"[:63].rstrip("-_.")


def beir_settings(data_dir: Path, name: str, base: Any = None) -> Any:
    """Settings for a BEIR run: ``base``'s embedding/chunking/retrieval/LLM, an embedded Chroma in ``data_dir`` and
    the dataset's own collection."""
    from rag.settings import Settings

    base = base or Settings()
    store = base.store.model_copy(update={"mode": "embedded", "collection": beir_collection(name)})
    return base.model_copy(update={"data_dir": Path(data_dir), "store": store})


@dataclass
class IndexInfo:
    collection: str
    data_dir: str
    papers: int
    chunks: int
    rejected: list[str]
    seconds: float


def index_beir(dataset: BeirDataset, settings: Any, embedder: Any = None) -> tuple[Any, IndexInfo]:
    """Ingest the dataset's corpus.jsonl (incremental: a second run writes nothing) into ``settings``' collection.
    Returns (store, info)."""
    from ingest.pipeline import Ingestor
    from rag.store import open_store

    store = open_store(settings)
    report = Ingestor(settings, store, embedder).ingest_paths([dataset.path / "corpus.jsonl"], fmt="beir")
    info = IndexInfo(
        collection=settings.store.collection,
        data_dir=str(settings.data_dir),
        papers=report.seen,
        chunks=report.total_chunks,
        rejected=list(report.rejected),
        seconds=report.seconds,
    )
    return store, info


# --------------------------------------------------------------------------------------------------- scoring


@dataclass
class BeirResult:
    """``summary``: mode -> metric -> mean over the scored queries; ``rows``: one per (query, mode)."""

    dataset: str
    split: str
    modes: tuple[str, ...]
    summary: dict[str, dict[str, float]]
    rows: list[dict[str, Any]]
    n_queries: int
    n_docs: int
    index: dict[str, Any] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    unindexed_relevant: int = 0  # relevant judgments whose document the ingest rejected (they can never be found)
    settings: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    commit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_beir(
    dataset: BeirDataset,
    settings: Any,
    modes: Sequence[str] = BEIR_MODES,
    *,
    embedder: Any = None,
    depth: int = BEIR_DEPTH,
    metrics: Sequence[str] = BEIR_METRICS,
) -> BeirResult:
    """Index the corpus (into ``settings``' own collection), rank ``depth`` documents per scored query in every
    mode, and score the rankings with ranx."""
    from rag.embeddings import build_embedder
    from rag.retrieve import Retriever

    start = time.perf_counter()
    embedder = embedder or build_embedder(settings.embedding, settings.models_dir)
    store, info = index_beir(dataset, settings, embedder)
    retriever = Retriever.open(settings, store, embedder)
    retriever.candidates = max(settings.retrieval.candidates, depth)
    indexed = {p for page in store.pages(include_documents=False) for p in (m.get("paper_id") for m in page.metadatas)}
    unindexed = sum(d not in indexed for docs in dataset.relevant.values() for d in docs)
    rows: list[dict[str, Any]] = []
    latency: dict[str, dict[str, float]] = {}
    summary: dict[str, dict[str, float]] = {}
    qids = dataset.scored_queries
    for mode in modes:
        rankings: dict[str, list[str]] = {}
        times: list[float] = []
        for qid in qids:
            t0 = time.perf_counter()
            hits = retriever.retrieve(dataset.queries[qid], k=depth + 1, mode=mode)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t0) * 1000)
            rankings[qid] = [h.paper_id for h in hits if h.paper_id != qid][:depth]  # ignore_identical_ids
        per_query = ranx_scores(dataset.qrels, rankings, metrics)
        for qid in qids:
            rows.append(
                {
                    "id": qid,
                    "mode": mode,
                    "query": dataset.queries[qid],
                    "relevant": sorted(dataset.relevant[qid]),
                    "retrieved": rankings[qid][:10],
                    **per_query[qid],
                }
            )
        summary[mode] = {m: mean(per_query[q][m] for q in qids) for m in metrics}
        latency[mode] = {"p50": percentile(times, 50), "p95": percentile(times, 95)}

    return BeirResult(
        dataset=dataset.name,
        split=dataset.split,
        modes=tuple(modes),
        summary=summary,
        rows=rows,
        n_queries=len(qids),
        n_docs=len(dataset.corpus),
        index=asdict(info),
        latency_ms=latency,
        unindexed_relevant=unindexed,
        settings={
            "embedding": {"provider": settings.embedding.provider},
            "chunking": settings.chunking.model_dump(mode="json"),
            "retrieval": {"candidates": retriever.candidates, "depth": depth},
        },
        elapsed_s=time.perf_counter() - start,
        commit=git_commit(),
    )


def _fmt(v: float) -> str:
    return "–" if v is None or math.isnan(v) else f"{v:.3f}"


def format_table(result: BeirResult) -> str:
    metrics = list(next(iter(result.summary.values()))) if result.summary else list(BEIR_METRICS)
    lines = ["| mode | " + " | ".join(metrics) + " | p50 ms |", "|---|" + "---|" * (len(metrics) + 1)]
    for mode in result.modes:
        vals = result.summary[mode]
        lat = result.latency_ms.get(mode, {}).get("p50", math.nan)
        lines.append(f"| {mode} | " + " | ".join(_fmt(vals[m]) for m in metrics) + f" | {lat:.0f} |")
    return "\n".join(lines)


def report_markdown(result: BeirResult) -> str:
    idx = result.index
    lines = [
        f"# BEIR eval: {result.dataset} ({result.split})",
        "",
        f"- {result.n_queries} scored queries, {result.n_docs} documents; indexed {idx.get('papers')} papers as "
        f"{idx.get('chunks')} chunks in collection `{idx.get('collection')}` ({idx.get('seconds', 0):.1f} s)",
        f"- documents the ingest rejected: {len(idx.get('rejected', []))}; relevant judgments on them: "
        f"{result.unindexed_relevant}",
        "- metrics: ranx, trec_eval semantics (grade > 0 relevant, nDCG gain = grade); retrieval only, no answers",
        f"- commit: {result.commit or 'unknown'}; wall time {result.elapsed_s:.1f} s",
        "",
        format_table(result),
        "",
    ]
    return "\n".join(lines)


def write_beir_results(result: BeirResult, out_dir: Path) -> Path:

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"kind": "beir", **json_safe(result.to_dict())}
    (out_dir / "results.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out_dir / "report.md").write_text(report_markdown(result), encoding="utf-8")
    return out_dir


def beir_main(
    path: Path,
    *,
    split: str = "test",
    modes: Sequence[str] = BEIR_MODES,
    out: Path | None = None,
    data_dir: Path | None = None,
    embedder: Any = None,
) -> BeirResult:
    """What ``python -m evals.run --beir DIR`` does: load, index, score, print, write results.json + report.md to
    ``out``. The index goes to ``data_dir`` if given, else ``out/index`` (so a re-run is incremental), else a temp
    dir; in every case into the dataset's own collection."""
    dataset = load_beir(path, split)
    with tempfile.TemporaryDirectory(prefix="rag-beir-") as tmp:
        settings = beir_settings(data_dir or (out / "index" if out else Path(tmp)), dataset.name)
        result = run_beir(dataset, settings, modes, embedder=embedder)
    print(f"BEIR {result.dataset} ({result.split}): {result.n_queries} queries, {result.n_docs} documents")
    if result.index.get("rejected"):
        print(f"  {len(result.index['rejected'])} documents rejected by the ingest, e.g. {result.index['rejected'][0]}")
    print(format_table(result))
    if out:
        write_beir_results(result, out)
        print(f"wrote {out}/results.json and {out}/report.md")
    return result
