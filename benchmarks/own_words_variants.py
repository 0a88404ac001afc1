"""Own-words retrieval variants, DEV split only: an in-memory replica of hybrid retrieval, so that chunking, the
fold of chunks into papers, and query-, dense- and lexical-side variants can be swept without re-ingesting.

    .venv/bin/python benchmarks/own_words_variants.py                 # every variant, table to stdout
    .venv/bin/python benchmarks/own_words_variants.py --only base,fold

Chunks are built with ingest.chunk (any ``max_tokens``), embedded with the bundled MiniLM (vectors cached under
``--cache``: each chunking is a full embedding pass, ~1-5 min on 2 shared cores), searched exactly (numpy dot
products over ~1.4k vectors; Chroma's HNSW returns the same at this size) and lexically with the real
``LexicalIndex`` over the same chunk texts (title included); fusion and the gate are rag.fusion's. Row ``base``
reproduces the default hybrid of benchmarks/own_words.py exactly, ``dense`` its dense row. The test split is never
loaded here: variants are chosen on dev, and only the chosen default is reported on test (benchmarks/own_words.py).
Results: docs/retrieval.md, issue 11.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.own_words import K, ndcg, slices

Ranker = Callable[[str], list[str]]
Hits = list[Any]  # rag.fusion.Hit, imported lazily
# A dense side: (index, query vector, depth) -> chunk hits, best first.
DenseSide = Callable[["Index", Any, int], Hits]
# A lexical side used where the gate shuts BM25 out: (index, query, dense hits, depth) -> (hits, weight).
Fallback = Callable[["Index", str, Hits, int], tuple[Hits, float]]
N = 50  # candidates per side, as Retriever


@dataclass
class Index:
    """One chunking of the corpus: chunk ids, paper ids, texts as indexed by BM25 (title included), unit vectors."""

    ids: list[str]
    papers: list[str]
    texts: list[str]
    vectors: Any
    lexical: Any
    _stems: list[list[str]] = field(default_factory=list)

    def scores(self, vec: Any) -> Any:
        return self.vectors @ vec

    def dense(self, vec: Any, n: int = N, scores: Any = None) -> Hits:
        import numpy as np

        from rag.fusion import Hit

        sims = self.scores(vec) if scores is None else scores
        top = np.argsort(-sims, kind="stable")[:n]
        return [Hit(self.ids[i], self.papers[i], float(sims[i])) for i in top]

    def stems(self) -> list[list[str]]:
        if not self._stems:
            self._stems = [self.lexical._known_terms(t) for t in self.texts]
        return self._stems


class Vectors:
    """Embeddings of questions (and their rewrites), memoised: the sweep embeds the same texts many times."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.memo: dict[str, Any] = {}

    def __call__(self, texts: list[str]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            for t, v in zip(todo, self.embedder.get_text_embedding_batch(todo), strict=True):
                self.memo[t] = np.asarray(v, dtype=np.float32)
        return np.stack([self.memo[t] for t in texts])

    def one(self, text: str) -> Any:
        return self([text])[0]


def build_index(
    papers: Sequence[Any], max_tokens: int, embed: Vectors, cache: Path, title: Callable[[str], str] | None = None
) -> Index:
    """``title``: what of each title the embedded text keeps (None: all of it, as ingest does; "" drops the title
    prefix). BM25 always indexes the whole title, as the pipeline does."""
    import numpy as np

    from ingest.chunk import chunk_paper
    from rag.embeddings import wordpiece_counter
    from rag.lexical import LexicalIndex, tokenize_pages

    count = wordpiece_counter()
    nodes = [n for p in papers for n in chunk_paper(p, max_tokens, count)]
    ids = [n.id for n in nodes]
    texts = [n.embedded for n in nodes]
    embedded = texts if title is None else [_retitle(t, title) for t in texts]
    key = hashlib.sha1("\n".join(embedded).encode()).hexdigest()[:12]
    path = cache / f"chunks-{max_tokens}-{key}.npy"
    if path.exists():
        vectors = np.load(path)
    else:
        t0 = time.perf_counter()
        vectors = np.asarray(embed.embedder.get_text_embedding_batch(embedded), dtype=np.float32)
        print(f"embedded {len(texts)} chunks in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        np.save(path, vectors)
    pieces = [count(t) + 2 for t in embedded]
    print(
        f"max_tokens {max_tokens}: {len(texts)} chunks, {sum(pieces)} word-pieces, "
        f"share over 128: {sum(p > 128 for p in pieces) / len(pieces):.2f}",
        file=sys.stderr,
    )
    tok_ids, tokenized = tokenize_pages([(ids, texts)])
    lexical = LexicalIndex.build(Path(tempfile.mkdtemp(prefix="bm25-")) / "bm25", tok_ids, tokenized)
    return Index(ids, [str(n.metadata["paper_id"]) for n in nodes], texts, vectors, lexical)


def hybrid(
    index: Index, query: str, vec: Any, dense_side: DenseSide | None = None, fallback: Fallback | None = None
) -> list[str]:
    """Retriever.retrieve's hybrid branch over the in-memory index (``fallback``: a lexical list used instead of
    BM25's where the gate shuts BM25 out)."""
    from rag.fusion import Hit, fold_to_papers, fuse_zscore, lexical_gate, phrase_boost, phrase_pairs
    from rag.question import mentions, specific_terms

    dense = dense_side(index, vec, N) if dense_side else index.dense(vec)
    lexical = [Hit(c, c.rsplit("#", 2)[0], s) for c, s in index.lexical.search(query, k=N)]
    text = dict(zip(index.ids, index.texts, strict=True))
    phrases = bool(phrase_pairs(query))
    gate = 0.0
    if lexical:
        top = _fields(text[lexical[0].chunk_id])[1] if phrases else None
        if top is not None and any(mentions(top, name) for name in specific_terms(query)):
            gate = 1.0
        else:
            attainable = index.lexical.attainable(query)
            gate = lexical_gate(lexical[0].score / attainable) if attainable > 0 else 0.0
    if lexical and phrases:
        lexical = phrase_boost(query, lexical, {h.chunk_id: _fields(text[h.chunk_id]) for h in lexical})
    if fallback is not None and gate == 0.0:
        lexical, gate = fallback(index, query, dense, N)
    fused = fuse_zscore(dense, lexical, lexical_weight=gate, depth=N)
    return [h.paper_id for h in fold_to_papers(fused)[:K]]


def dense_only(index: Index, vec: Any, dense_side: DenseSide | None = None) -> list[str]:
    from rag.fusion import fold_to_papers

    hits = dense_side(index, vec, N) if dense_side else index.dense(vec)
    return [h.paper_id for h in fold_to_papers(hits)[:K]]


def _fields(embedded: str) -> tuple[str, str]:
    head, _, body = embedded.partition("\n\n")
    return head.removeprefix("title: "), body


def _retitle(embedded: str, title: Callable[[str], str]) -> str:
    head, body = _fields(embedded)
    kept = title(head)
    return f"title: {kept}\n\n{body}" if kept else body


_NAME = re.compile(r"^[^:]{1,40}:\s+(?=\S)")


def drop_name(title: str) -> str:
    """The title without a leading coined name ("ODICE: Revealing ..." -> "Revealing ...")."""
    return _NAME.sub("", title)


# ------------------------------------------------------------------------ how chunk scores fold into a paper


def fold(agg: str, param: float) -> DenseSide:
    """Dense hits, one per paper (its best chunk's id), scored by an aggregate of the paper's chunk cosines among
    the candidates: ``bonus``: best + param x second best; ``lse``: param x log sum exp(cosine / param)."""
    import numpy as np

    from rag.fusion import Hit

    def run(index: Index, vec: Any, n: int) -> Hits:
        hits = index.dense(vec, n)
        by_paper: dict[str, list[float]] = {}
        for h in hits:
            by_paper.setdefault(h.paper_id, []).append(h.score)
        out: list[Any] = []
        for h in hits:
            s = by_paper.pop(h.paper_id, None)
            if s is None:
                continue  # not the paper's best chunk
            if agg == "bonus":
                score = s[0] + param * (s[1] if len(s) > 1 else 0.0)
            else:
                score = param * float(np.log(np.sum(np.exp(np.array(s) / param))))
            out.append(Hit(h.chunk_id, h.paper_id, score))
        return sorted(out, key=lambda h: -h.score)

    return run


def per_chunk(adjust: Callable[[Index], Any]) -> DenseSide:
    """Cosines minus a per-chunk offset computed once per index (``adjust(index)``: an array over chunks)."""
    memo: dict[int, Any] = {}

    def run(index: Index, vec: Any, n: int) -> Hits:
        if id(index) not in memo:
            memo[id(index)] = adjust(index)
        return index.dense(vec, n, scores=index.scores(vec) - memo[id(index)])

    return run


def chunk_count_penalty(gamma: float) -> Callable[[Index], Any]:
    """gamma x log(chunks of the paper): the best of n noisy cosines grows with n."""
    import numpy as np

    def offsets(index: Index) -> Any:
        n = Counter(index.papers)
        return gamma * np.log(np.array([n[p] for p in index.papers], dtype=np.float32))

    return offsets


def hubness(k: int, beta: float) -> Callable[[Index], Any]:
    """CSLS-style: beta x mean cosine of a chunk to its k nearest chunks of other papers (hub chunks sink)."""
    import numpy as np

    def offsets(index: Index) -> Any:
        sims = index.vectors @ index.vectors.T
        papers = np.array(index.papers)
        sims[papers[:, None] == papers[None, :]] = -1.0
        return beta * -np.sort(-sims, axis=1)[:, :k].mean(1)

    return offsets


def centered(beta: float) -> DenseSide:
    """Cosine after subtracting beta x the corpus mean vector from chunks and query (anisotropy correction)."""
    import numpy as np

    memo: dict[int, tuple[Any, Any]] = {}

    def run(index: Index, vec: Any, n: int) -> Hits:
        if id(index) not in memo:
            mu = beta * index.vectors.mean(0)
            c = index.vectors - mu
            memo[id(index)] = (mu, c / np.linalg.norm(c, axis=1, keepdims=True))
        mu, c = memo[id(index)]
        q = vec - mu
        return index.dense(vec, n, scores=c @ (q / np.linalg.norm(q)))

    return run


def centroid_mix(alpha: float) -> DenseSide:
    """Each chunk's cosine plus alpha x its paper's cosine to the mean of the paper's chunk vectors."""
    import numpy as np

    memo: dict[int, Any] = {}

    def run(index: Index, vec: Any, n: int) -> Hits:
        if id(index) not in memo:
            rows: dict[str, list[int]] = {}
            for i, p in enumerate(index.papers):
                rows.setdefault(p, []).append(i)
            cent = np.zeros_like(index.vectors)
            for idx in rows.values():
                m = index.vectors[idx].mean(0)
                cent[idx] = m / np.linalg.norm(m)
            memo[id(index)] = cent
        return index.dense(vec, n, scores=index.scores(vec) + alpha * (memo[id(index)] @ vec))

    return run


# --------------------------------------------------------------------------------------- lexical side (RM3)


def rm3(papers: int, terms: int, weight: float) -> Fallback:
    """BM25 on the query's terms plus the ``terms`` strongest stems of the top ``papers`` dense papers' chunks
    (tf x idf x cosine; relevance-model expansion, Lavrenko & Croft / RM3), fused with ``weight``."""
    import numpy as np

    from rag.fusion import Hit

    idf_memo: dict[int, dict[str, float]] = {}

    def run(index: Index, query: str, dense: Hits, n: int) -> tuple[Hits, float]:
        stems = index.stems()
        if id(index) not in idf_memo:
            df = Counter(s for st in stems for s in set(st))
            idf_memo[id(index)] = {t: math.log(len(stems) / c) for t, c in df.items()}
        idf = idf_memo[id(index)]
        row = {c: i for i, c in enumerate(index.ids)}
        seen: set[str] = set()
        weights: Counter[str] = Counter()
        for h in dense:
            if h.paper_id in seen:
                continue
            seen.add(h.paper_id)
            st = stems[row[h.chunk_id]]
            for t, c in Counter(st).items():
                weights[t] += h.score * c / len(st) * idf[t]
            if len(seen) >= papers:
                break
        known = index.lexical._known_terms(query)
        tokens = list(dict.fromkeys(known + [t for t, _ in weights.most_common(terms)]))
        scores = index.lexical._bm25.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:n]
        return [Hit(index.ids[i], index.papers[i], float(scores[i])) for i in top if scores[i] > 0], weight

    return run


# ------------------------------------------------------------------------------------------- query side


_LEAD = re.compile(
    r"^\s*(?:(?:is|are) there (?:a |any )?(?:way|method|approach|work|paper|papers|research)s?"
    r"(?: (?:that|which|to|on|for|about))?|how (?:can|could|do|does|to|should) (?:i|we|one|you)?|"
    r"what (?:is|are) (?:a |the )?(?:way|method|approach|technique)s?(?: (?:to|for|that))?|"
    r"(?:which|what) (?:paper|papers|work|method|approach)s? (?:\w+ )?|"
    r"(?:i(?:'m| am) looking for|looking for|find|any|papers? (?:on|about)))\b[\s,:]*",
    re.IGNORECASE,
)


def strip_question(q: str) -> str:
    """The question without its interrogative lead ("how can we ...", "is there a way to ..."), if 3+ words stay."""
    out = _LEAD.sub("", q).rstrip(" ?")
    return out if len(out.split()) >= 3 else q


def clauses(q: str) -> list[str]:
    """The question's clauses of 3+ words (split at punctuation and at while/without/by/and)."""
    parts = [p.strip() for p in re.split(r"[;,:?]|\bwhile\b|\bwithout\b|\bby\b|\band\b", q) if p and p.strip()]
    return [p for p in parts if len(p.split()) >= 3]


# ------------------------------------------------------------------------------------------------------ driver


def templated(embed: Vectors, template: str) -> Callable[[str], Any]:
    """The question embedded inside ``template`` (``{q}``: the question)."""

    def vec(q: str) -> Any:
        return embed.one(template.format(q=q))

    return vec


def shifted(index: Index, embed: Vectors, questions: list[str], beta: float) -> Callable[[str], Any]:
    """The query vector moved by beta x (chunks' mean - other questions' mean): a "modality gap" shift from
    question style toward abstract style. Two-fold: a question is moved by the mean of the other half's."""
    import random

    import numpy as np

    order = sorted(questions)
    random.Random(0).shuffle(order)
    halves = [sorted(order[::2]), sorted(order[1::2])]
    means = [embed(h).mean(0) for h in halves]
    first = set(halves[0])
    mu = index.vectors.mean(0)

    def vec(q: str) -> Any:
        v = embed.one(q) + beta * (mu - means[1 if q in first else 0])
        return v / np.linalg.norm(v)

    return vec


def rocchio(index: Index, embed: Vectors, chunks: int, beta: float) -> Callable[[str], Any]:
    """Dense pseudo-relevance feedback: the query vector plus beta x the mean of its ``chunks`` nearest chunks'
    vectors (Rocchio without negatives), renormalised."""
    import numpy as np

    def vec(q: str) -> Any:
        v = embed.one(q)
        top = np.argsort(-index.scores(v), kind="stable")[:chunks]
        moved = v + beta * index.vectors[top].mean(0)
        return moved / np.linalg.norm(moved)

    return vec


def variants(indexes: dict[str, Index], embed: Vectors, own: list[tuple[str, str, Any]]) -> dict[str, Ranker]:
    import numpy as np

    base = indexes["256"]

    def unit(v: Any) -> Any:
        return v / np.linalg.norm(v)

    def stripped_mean(q: str) -> Any:
        return unit(embed.one(q) + embed.one(strip_question(q)))

    def clause_mean(q: str) -> Any:
        parts = clauses(q)
        return unit(embed.one(q) + (embed(parts).mean(0) if parts else embed.one(q)))

    def ranker(
        ix: Index,
        side: DenseSide | None = None,
        fallback: Fallback | None = None,
        vec: Callable[[str], Any] = embed.one,
        dense: bool = False,
    ) -> Ranker:
        def rank(q: str) -> list[str]:
            return dense_only(ix, vec(q), side) if dense else hybrid(ix, q, vec(q), side, fallback)

        return rank

    out: dict[str, Ranker] = {
        "dense (chunks of <= 256 word-pieces, max per paper)": ranker(base, dense=True),
        "base: hybrid (default)": ranker(base),
    }
    for label, ix in indexes.items():
        if ix is not base:
            out[f"chunks: {label}"] = ranker(ix)
            out[f"chunks: {label}, dense"] = ranker(ix, dense=True)
    sides: dict[str, DenseSide] = {}
    for b in (0.05, 0.1, 0.2, 0.3):
        sides[f"fold: best + {b} x second chunk"] = fold("bonus", b)
    for t in (0.02, 0.05):
        sides[f"fold: softmax-sum (log-sum-exp), T {t}"] = fold("lse", t)
    for g in (0.01, 0.02, 0.04):
        sides[f"fold: best - {g} x log(chunks)"] = per_chunk(chunk_count_penalty(g))
    for a in (0.25, 0.5, 1.0):
        sides[f"fold: best + {a} x paper centroid cosine"] = centroid_mix(a)
    for k, beta in ((5, 0.25), (20, 0.25), (20, 0.5)):
        sides[f"dense: hubness correction (CSLS) k {k}, beta {beta}"] = per_chunk(hubness(k, beta))
    for beta in (0.5, 1.0):
        sides[f"dense: centered vectors, beta {beta}"] = centered(beta)
    for label, side in sides.items():
        out[label] = ranker(base, side)
    out["query: interrogative lead stripped"] = ranker(base, vec=lambda q: embed.one(strip_question(q)))
    out["query: mean(raw, stripped) vectors"] = ranker(base, vec=stripped_mean)
    out["query: mean(raw, mean of clauses) vectors"] = ranker(base, vec=clause_mean)
    for template in ("title: {q}", "In this paper, we study {q}"):
        out[f"query: embedded as '{template}'"] = ranker(base, vec=templated(embed, template))
    for beta in (0.3, 0.6, 1.0):
        out[f"query: moved {beta} x (chunks' mean - questions' mean), 2-fold over dev"] = ranker(
            base, vec=shifted(base, embed, [q for _, q, _ in own], beta)
        )
    for m, beta in ((3, 0.3), (3, 0.6), (5, 0.5), (10, 0.5), (10, 1.0)):
        out[f"query: dense feedback (Rocchio), mean of top {m} chunks x {beta}"] = ranker(
            base, vec=rocchio(base, embed, m, beta)
        )
    for m, t, w in ((3, 10, 0.1), (3, 10, 0.3), (10, 10, 0.1), (10, 10, 0.3), (10, 30, 0.1)):
        label = f"lexical: RM3 from top {m} dense papers, {t} terms, weight {w}, where the gate is shut"
        out[label] = ranker(base, fallback=rm3(m, t, w))
    return out


@dataclass
class Dev:
    """What every dev-split sweep starts from: the settings, the memoised embedder (every dev question already
    embedded), the bundled papers, the dev slices, and the default chunking's index."""

    settings: Any
    embed: Vectors
    papers: list[Any]
    sets: dict[str, Any]
    index: Index


def dev_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every dev sweep takes: ``--only`` (substrings of variant names) and ``--cache`` (vectors)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated substrings of variant names")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "own-words-variants")
    return parser


def load_dev(cache: Path) -> Dev:
    from ingest.dedup import dedup
    from ingest.formats import read_paths
    from rag.embeddings import build_embedder
    from rag.settings import Settings

    cache.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=cache / "rag")
    embed = Vectors(build_embedder(settings.embedding, settings.models_dir))
    papers = dedup(read_paths([settings.corpus_dir])[0].records)
    sets = slices("dev", papers)  # dev only, always
    index = build_index(papers, 256, embed, cache)
    embed(sorted({q for qs in sets.values() for _, q, _ in qs}))
    return Dev(settings, embed, papers, sets, index)


def main(argv: Sequence[str] | None = None) -> None:
    parser = dev_parser(__doc__)
    parser.add_argument("--chunks", default="128,160", help="other max_tokens to build besides 256 ('' for none)")
    parser.add_argument("--no-title-variants", action="store_true", help="skip the two extra embedding passes")
    args = parser.parse_args(argv)

    dev = load_dev(args.cache)
    embed, papers, sets = dev.embed, dev.papers, dev.sets
    indexes = {"256": dev.index}
    for m in filter(None, args.chunks.split(",")):
        indexes[f"<= {m} word-pieces"] = build_index(papers, int(m), embed, args.cache)
    if not args.no_title_variants:
        indexes["no title in the embedded text"] = build_index(papers, 256, embed, args.cache, title=lambda t: "")
        indexes["title without its leading name ('ODICE: ...')"] = build_index(
            papers, 256, embed, args.cache, title=drop_name
        )
    table = variants(indexes, embed, sets["own words: all"])
    wanted = [w for w in args.only.split(",") if w]
    header = "| variant, dev split | " + " | ".join(f"{s} ({len(q)})" for s, q in sets.items()) + " |"
    print(header + "\n|---|" + "---|" * len(sets))
    for name, rank in table.items():
        if wanted and not any(w in name for w in wanted):
            continue
        row = [ndcg(qs, rank) for qs in sets.values()]
        print(f"| {name} | " + " | ".join(f"{x:.3f}" for x in row) + " |", flush=True)


if __name__ == "__main__":
    main()
