"""Own-words retrieval: this project's modes and the plain llama-index anchor, same process, same questions.

    .venv/bin/python benchmarks/own_words.py --split dev              # choose on dev
    .venv/bin/python benchmarks/own_words.py --split test --write-docs  # report on test (docs/retrieval.md)
    .venv/bin/python benchmarks/own_words.py --split dev \
        --embedding-provider sentence-transformers --model-path /models/bge-small-en-v1.5   # another model
    .venv/bin/python benchmarks/own_words.py --split dev --rewrite hyde,hyde+bm25-passage,multi-query \
        --llm-base-url http://127.0.0.1:8080/v1 --llm-model smollm2       # the query-rewriting stage, own words

The embedding options (or RAG_EMBEDDING__* / rag.toml, which they override) choose the model of *both* sides: this
project's index and the anchor's, so the anchor row always uses the same model as the rows it is compared with.

The anchor is the llama-index quickstart: one ``Document`` per paper (title in its metadata, so in the embedded
text, as llama-index does by default), ``VectorStoreIndex.from_documents`` with the default ``SentenceSplitter``,
the same bundled MiniLM, a Chroma collection, ``as_retriever``. Both indexes are built fresh in a temp dir.

Slices (paper-level nDCG@10, ranx):
- own words: all of evals/datasets/own_words_<split>.jsonl, then its slices: one-paper questions (type
  ``own_words``, protocol: evals/protocol.py) without the paper's vocabulary (≤ 1 shared non-common word) and
  with some of it, and broad-topic questions (type ``broad``, several gold papers);
- curated: the answerable curated questions (evals/datasets/curated.jsonl) of the split, without follow-ups;
- wording reuse: 10-word windows of abstract sentences (evals/synthetic.py; seed 7 on dev, 23 on test).

``--rewrite``: instead of the table above, the query-rewriting stage (rag.rewrite) against hybrid without it, on the
own-words slices only (each rewritten question costs an LLM call), with milliseconds per ``search`` and how often the
stage fell back; ``--questions N`` takes N evenly spaced own-words questions. The LLM runs at temperature 0 and its
replies are kept per prompt, so ``hyde+bm25-passage`` reuses ``hyde``'s passages (its time is search time only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.settings import EMBEDDING_PROVIDERS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "retrieval.md"
START, END = "<!-- own-words-table:start -->", "<!-- own-words-table:end -->"
SEEDS = {"dev": 7, "test": 23}
K = 10

Slice = list[tuple[str, str, tuple[str, ...]]]  # (qid, question, gold paper ids)
Ranker = Callable[[str], list[str]]
REWRITES: dict[str, dict[str, str]] = {  # --rewrite name -> RewriteSettings fields
    "hyde": {"mode": "hyde"},
    "hyde+bm25-passage": {"mode": "hyde", "hyde_bm25": "question+passage"},
    "multi-query": {"mode": "multi-query"},
}


def slices(split: str, papers: Sequence[Any]) -> dict[str, Slice]:
    from evals.data import load_questions, own_words_files
    from evals.protocol import bundled_checker
    from evals.synthetic import wording_reuse_questions

    own = [q for f in own_words_files() for q in load_questions(f, split=split)]  # type: ignore[arg-type]
    curated = [q for q in load_questions(split=split) if q.answerable and q.type != "followup"]  # type: ignore[arg-type]
    wording = wording_reuse_questions(list(papers), 100, seed=SEEDS[split])
    checker = bundled_checker()
    one = [q for q in own if q.type == "own_words"]
    return {
        "own words: all": [(q.id, q.question, q.gold) for q in own],
        "own words: one paper, no vocabulary": [
            (q.id, q.question, q.gold) for q in one if checker.vocabulary_slice(q.question, q.gold) == "no vocabulary"
        ],
        "own words: one paper, some vocabulary": [
            (q.id, q.question, q.gold) for q in one if checker.vocabulary_slice(q.question, q.gold) != "no vocabulary"
        ],
        "own words: broad topic": [(q.id, q.question, q.gold) for q in own if q.type == "broad"],
        "curated (reuses wording)": [(q.id, q.question, q.gold) for q in curated],
        "wording reuse: 10-word windows": [(q.qid, q.text, q.gold) for q in wording],
    }


def anchor(papers: Sequence[Any], embedder: Any, path: Path) -> Ranker:
    """The llama-index quickstart over the same papers and model."""
    import chromadb
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag.llama_adapters import LlamaEmbedding

    client = chromadb.PersistentClient(path=str(path))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("anchor"))
    docs = [
        Document(
            text=p.abstract,
            metadata={"title": p.title, "paper_id": p.paper_id},
            excluded_embed_metadata_keys=["paper_id"],
        )
        for p in papers
    ]
    index = VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=LlamaEmbedding(embedder)
    )
    retriever = index.as_retriever(similarity_top_k=3 * K)

    def rank(q: str) -> list[str]:
        ids = [str(n.node.metadata["paper_id"]) for n in retriever.retrieve(q)]
        return list(dict.fromkeys(ids))[:K]

    return rank


def ndcg(questions: Slice, rank: Ranker) -> float:
    from ranx import Qrels, Run, evaluate

    qrels = Qrels({qid: dict.fromkeys(gold, 1) for qid, _, gold in questions})
    runs: dict[str, dict[str, float]] = {}
    for qid, q, _ in questions:
        ranked = rank(q)
        runs[qid] = {pid: float(len(ranked) - i) for i, pid in enumerate(ranked)} or {"none": 0.0}
    return float(evaluate(qrels, Run(runs), "ndcg@10"))


class _Replay:
    """The LLM with its replies kept per prompt: at temperature 0 the same prompt gets the same reply, so variants
    that send the same prompt (HyDE with either BM25 text) pay for one call."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.model = llm.model
        self.api_base = getattr(llm, "api_base", None)
        self._replies: dict[tuple[tuple[str, str], ...], Any] = {}

    def chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        key = tuple((str(m.role), str(m.content)) for m in messages)
        if key not in self._replies:
            self._replies[key] = self.llm.chat(messages, **kwargs)
        return self._replies[key]

    def stream_chat(self, messages: Sequence[Any], **kwargs: Any) -> Any:
        return self.llm.stream_chat(messages, **kwargs)


def rewrite_table(args: argparse.Namespace, assistant: Any, sets: dict[str, Slice], anchor_rank: Ranker) -> str:
    """nDCG@10 on the own-words slices, ms per search and fall-backs: the anchor, hybrid, then hybrid with each
    rewrite."""
    from rag.llms import build_llm
    from rag.retrieve import Retriever
    from rag.rewrite import build_rewriter
    from rag.settings import LLMSettings, RewriteSettings

    llm_cfg = LLMSettings(
        provider="openai-compatible",
        base_url=args.llm_base_url,
        model=args.llm_model,
        max_tokens=args.llm_max_tokens,
        timeout=args.llm_timeout,
        max_retries=0,
    )
    llm = _Replay(build_llm(llm_cfg))
    own = {name: qs for name, qs in sets.items() if name.startswith("own words")}
    every = own["own words: all"]
    n = min(args.questions or len(every), len(every))
    chosen = {every[i * len(every) // n][0] for i in range(n)}
    subsets = {name: [q for q in qs if q[0] in chosen] for name, qs in own.items()}
    own = {name: qs for name, qs in subsets.items() if qs}
    base = assistant.retriever
    header = f"| nDCG@10, {args.split} split | " + " | ".join(f"{s} ({len(q)})" for s, q in own.items())
    lines = [header + " | ms per search, p50 / mean | fell back |", "|---|" + "---|" * (len(own) + 2)]
    anchor_ms: list[float] = []

    def timed_anchor(q: str) -> list[str]:
        t0 = time.perf_counter()
        ids = anchor_rank(q)
        anchor_ms.append((time.perf_counter() - t0) * 1000)
        return ids

    ranked_anchor = {q: timed_anchor(q) for _, q, _ in own["own words: all"]}
    row_anchor = {s: ndcg(qs, ranked_anchor.__getitem__) for s, qs in own.items()}
    cost_anchor = f"{statistics.median(anchor_ms):,.0f} / {statistics.fmean(anchor_ms):,.0f}"
    lines.append(
        "| llama-index quickstart (anchor) | "
        + " | ".join(f"{row_anchor[s]:.3f}" for s in own)
        + f" | {cost_anchor} | – |"
    )
    for name in ["none", *args.rewrite.split(",")]:
        rewriter = None if name == "none" else build_rewriter(RewriteSettings(**REWRITES[name]), llm)  # type: ignore[arg-type]
        retriever = Retriever(base.store, base.lexical, base.embedder, base.candidates, rewriter=rewriter)
        ms: list[float] = []
        notes: list[str] = []

        def rank(q: str, retriever: Retriever = retriever, ms: list[float] = ms, notes: list[str] = notes) -> list[str]:
            t0 = time.perf_counter()
            found = retriever.search(q, K, "hybrid")
            ms.append((time.perf_counter() - t0) * 1000)
            notes.extend(found.notes)
            return [h.paper_id for h in found.hits]

        # Each question is searched once: the slices are subsets of "own words: all", scored from its rankings.
        ranked = {q: rank(q) for _, q, _ in own["own words: all"]}
        row = {s: ndcg(qs, ranked.__getitem__) for s, qs in own.items()}
        label = "hybrid, no rewrite" if name == "none" else f"hybrid + {name}"
        cost = f"{statistics.median(ms):,.0f} / {statistics.fmean(ms):,.0f}"
        lines.append(f"| {label} | " + " | ".join(f"{row[s]:.3f}" for s in own) + f" | {cost} | {len(notes)} |")
        print(lines[-1], file=sys.stderr)
        if notes:
            print(f"  e.g. {notes[0]}", file=sys.stderr)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--modes", default="dense,bm25,rrf,hybrid")
    parser.add_argument("--data-dir", type=Path, help="an existing index of the bundled corpus (default: build one)")
    parser.add_argument("--json", type=Path, help="write the numbers as JSON")
    parser.add_argument("--write-docs", action="store_true", help=f"replace the table in {DOCS.relative_to(ROOT)}")
    rw = parser.add_argument_group("query rewriting (rag.rewrite; own-words slices only)")
    rw.add_argument("--rewrite", help=f"comma-separated, of: {', '.join(REWRITES)}")
    rw.add_argument("--questions", type=int, help="N evenly spaced own-words questions (default: all)")
    rw.add_argument("--llm-base-url", help="the OpenAI-compatible chat server that rewrites")
    rw.add_argument("--llm-model", default="smollm2")
    rw.add_argument("--llm-max-tokens", type=int, default=128, help="most tokens per rewrite reply")
    rw.add_argument("--llm-timeout", type=float, default=300.0, help="seconds per LLM request (no retries)")
    emb = parser.add_argument_group("embedding model (both this project's index and the anchor's)")
    emb.add_argument("--embedding-provider", choices=EMBEDDING_PROVIDERS, help="default: settings ('local')")
    emb.add_argument("--model-path", type=Path, help="sentence-transformers: the local model directory")
    emb.add_argument("--base-url", help="openai-compatible: the embeddings server's base URL")
    emb.add_argument("--model", help="openai(-compatible): the model name")
    emb.add_argument("--dim", type=int, help="openai(-compatible): the vector size")
    args = parser.parse_args(argv)
    if args.rewrite and not args.llm_base_url:
        parser.error("--rewrite needs --llm-base-url")
    if args.rewrite and set(args.rewrite.split(",")) - set(REWRITES):
        parser.error(f"--rewrite takes {', '.join(REWRITES)}")

    from rag.assistant import Assistant
    from rag.embeddings import build_embedder, embedder_identity
    from rag.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="own-words-"))
    settings = Settings(data_dir=args.data_dir or tmp / "rag")
    chosen = {
        "provider": args.embedding_provider,
        "model_path": args.model_path,
        "openai_base_url": args.base_url,
        "openai_model": args.model,
        "openai_dim": args.dim,
    }
    overrides = {key: value for key, value in chosen.items() if value is not None}
    if overrides:
        settings = settings.model_copy(update={"embedding": settings.embedding.model_copy(update=overrides)})
    model_id, dim = embedder_identity(settings.embedding)
    print(f"embedding model: {model_id} ({settings.embedding.provider}, dim {dim})", file=sys.stderr)
    embedder = build_embedder(settings.embedding, settings.models_dir)
    t0 = time.perf_counter()
    assistant = Assistant.open(settings, embedder=embedder)
    print(f"index ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    from ingest.dedup import dedup
    from ingest.formats import read_paths

    papers = dedup(read_paths([settings.corpus_dir])[0].records)
    t0 = time.perf_counter()
    anchor_rank = anchor(papers, embedder, tmp / "anchor")
    print(f"anchor ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.rewrite:
        print(rewrite_table(args, assistant, slices(args.split, papers), anchor_rank))
        return
    rankers: dict[str, Ranker] = {"llama-index quickstart (anchor)": anchor_rank}
    for mode in args.modes.split(","):
        rankers[mode] = lambda q, m=mode: [h.paper_id for h in assistant.retrieve(q, K, m)]  # type: ignore[misc]
    sets = slices(args.split, papers)
    table = {name: {s: ndcg(qs, rank) for s, qs in sets.items()} for name, rank in rankers.items()}
    header = "| nDCG@10, " + args.split + " split | " + " | ".join(f"{s} ({len(q)})" for s, q in sets.items()) + " |"
    lines = [header, "|---|" + "---|" * len(sets)]
    for name, row in table.items():
        label = f"**{name}** (default)" if name == settings.retrieval.mode else name
        lines.append(f"| {label} | " + " | ".join(f"{row[s]:.3f}" for s in sets) + " |")
    text = "\n".join(lines)
    print(text)
    if args.json:
        payload = {"split": args.split, "embedding": {"model": model_id, "dim": dim}, "ndcg@10": table}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    if args.write_docs:
        doc = DOCS.read_text(encoding="utf-8")
        head, _, rest = doc.partition(START)
        _, _, tail = rest.partition(END)
        DOCS.write_text(f"{head}{START}\n{text}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
