"""Query-side linear adapter for the bundled MiniLM, DEV split only, k-fold cross-validated inside dev.

    .venv/bin/python benchmarks/query_adapter.py                # the whole sweep, table to stdout
    .venv/bin/python benchmarks/query_adapter.py --only ridge

The question's dense vector q becomes normalize(W q) before the dense search (cf. Chroma's technical report on
embedding adapters); documents are unchanged. W is trained on own-words dev questions (question vector -> its gold
paper's chunk vectors) and scored on held-out ones: 5 folds over dev, *grouped by gold paper* (questions sharing a
gold paper stay in one fold), because the test split's gold papers are disjoint from dev's, so an adapter must help
on papers it never saw. Each own-words question is scored once, by the W of the fold that held it out; curated and
wording-reuse questions (never trained on) are scored by each fold's W and the five nDCG@10 averaged.

Two ways to fit W:
- ridge toward the identity, closed form: min ||Q M - D||^2 + lam ||M - I||^2 (M = W^T; rows of Q are question
  vectors, D their gold paper's best chunk vector or the mean of its chunk vectors);
- contrastive: InfoNCE over all corpus papers (a paper's score = its best chunk's cosine, as retrieval folds it),
  temperature T, W initialised at I, penalty mu ||W - I||^2, full-batch Adam (torch, CPU).
and optionally a partial step q' = normalize(q + a (W q - q)).

Retrieval is benchmarks/own_words_variants.py's in-memory replica of the default hybrid (its ``base`` row equals
benchmarks/own_words.py's dev ``hybrid`` row). The test split is never loaded. Results: docs/retrieval.md.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.own_words import K
from benchmarks.own_words_variants import Index, dense_only, dev_parser, hybrid, load_dev

Slice = list[tuple[str, str, tuple[str, ...]]]
Fit = Callable[
    [Any, list[list[list[int]]]], Any
]  # (question vectors, per question: per gold paper its chunk rows) -> M
OWN = "own words: all"
FOLDS = 5


def ndcg_one(ranked: Sequence[str], gold: Sequence[str]) -> float:
    """Binary-relevance nDCG@10 of one ranking (as ranx computes it)."""
    g = set(gold)
    dcg = sum(1.0 / math.log2(i + 2) for i, p in enumerate(ranked[:K]) if p in g)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(g), K)))
    return dcg / ideal if ideal else 0.0


def grouped_folds(questions: Slice, folds: int = FOLDS) -> list[int]:
    """A fold per question; questions sharing a gold paper (transitively) share a fold. Components are dealt to
    folds largest first, each to the currently smallest fold (ties by a stable hash), so folds are near-equal."""
    parent = list(range(len(questions)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[str, int] = {}
    for i, (_, _, gold) in enumerate(questions):
        for p in gold:
            if p in first:
                parent[find(i)] = find(first[p])
            else:
                first[p] = i
    comps: dict[int, list[int]] = {}
    for i in range(len(questions)):
        comps.setdefault(find(i), []).append(i)
    order = sorted(
        comps.values(),
        key=lambda c: (-len(c), hashlib.sha1(questions[c[0]][0].encode()).hexdigest()),
    )
    sizes = [0] * folds
    out = [0] * len(questions)
    for comp in order:
        f = min(range(folds), key=lambda j: (sizes[j], j))
        for i in comp:
            out[i] = f
        sizes[f] += len(comp)
    return out


# ----------------------------------------------------------------------------------------------------- fitting


def targets(index: Index, qv: Any, gold_rows: list[list[int]], how: str) -> tuple[Any, Any]:
    """(question rows, target rows): one pair per (question, gold paper); the target is the paper's chunk most
    similar to the question (``best``) or the normalised mean of its chunk vectors (``mean``)."""
    import numpy as np

    qs, ds = [], []
    for q, rows_by_paper in zip(qv, gold_rows, strict=True):
        for rows in rows_by_paper:
            vecs = index.vectors[rows]
            if how == "best":
                d = vecs[int(np.argmax(vecs @ q))]
            else:
                m = vecs.mean(0)
                d = m / np.linalg.norm(m)
            qs.append(q)
            ds.append(d)
    return np.stack(qs), np.stack(ds)


def ridge(index: Index, lam: float, how: str) -> Fit:
    import numpy as np

    def fit(qv: Any, gold_rows: Any) -> Any:
        q, d = targets(index, qv, gold_rows, how)
        dim = q.shape[1]
        eye = np.eye(dim, dtype=np.float64)
        q64, d64 = q.astype(np.float64), d.astype(np.float64)
        return np.linalg.solve(q64.T @ q64 + lam * eye, q64.T @ d64 + lam * eye).astype(np.float32)

    return fit


def contrastive(index: Index, temp: float, mu: float, steps: int, lr: float, form: str = "full") -> Fit:
    """InfoNCE over papers: softmax over every paper's best-chunk cosine to normalize(q M) / temp; the gold
    papers are the positives (a broad question: each gold paper one term). ``form``: ``full`` (M any matrix),
    ``diag`` (M diagonal: a weight per dimension) or ``rank<r>`` (M = I + U V^T, U, V of r columns, V at 0)."""
    import numpy as np
    import torch

    papers = sorted(set(index.papers))
    col = {p: j for j, p in enumerate(papers)}
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(index.papers):
        rows.setdefault(p, []).append(i)
    width = max(len(r) for r in rows.values())
    pad = np.zeros((len(papers), width), dtype=np.int64)
    mask = np.zeros((len(papers), width), dtype=bool)
    for p, r in rows.items():
        pad[col[p], : len(r)] = r
        mask[col[p], : len(r)] = True
    chunks = torch.from_numpy(index.vectors)
    pad_t, mask_t = torch.from_numpy(pad), torch.from_numpy(mask)
    row_paper = {i: col[p] for i, p in enumerate(index.papers)}

    def fit(qv: Any, gold_rows: Any) -> Any:
        torch.manual_seed(0)
        pairs_q, pairs_p = [], []
        for qi, rows_by_paper in enumerate(gold_rows):
            for r in rows_by_paper:
                pairs_q.append(qi)
                pairs_p.append(row_paper[r[0]])
        q = torch.from_numpy(np.asarray(qv, dtype=np.float32))
        pq, pp = torch.tensor(pairs_q), torch.tensor(pairs_p)
        dim = q.shape[1]
        eye = torch.eye(dim)
        if form == "full":
            params = [eye.clone().requires_grad_(True)]
        elif form == "diag":
            params = [torch.ones(dim, requires_grad=True)]
        else:
            r = int(form.removeprefix("rank"))
            params = [(0.1 * torch.randn(dim, r)).requires_grad_(True), torch.zeros(r, dim, requires_grad=True)]

        def matrix() -> Any:
            if form == "full":
                return params[0]
            if form == "diag":
                return torch.diag(params[0])
            return eye + params[0] @ params[1]

        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(steps):
            m = matrix()
            z = torch.nn.functional.normalize(q @ m, dim=1)
            sims = z @ chunks.T  # questions x chunks
            per = sims[:, pad_t].masked_fill(~mask_t, -2.0).amax(-1)  # questions x papers
            logp = torch.log_softmax(per / temp, dim=1)
            loss = -logp[pq, pp].mean() + mu * ((m - eye) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return matrix().detach().numpy().astype(np.float32)

    return fit


def mixed(fit: Fit, a: float) -> Fit:
    """q' = normalize(q + a (q M - q)) = normalize(q (I + a (M - I)))."""
    import numpy as np

    def run(qv: Any, gold_rows: Any) -> Any:
        m = fit(qv, gold_rows)
        eye = np.eye(m.shape[0], dtype=np.float32)
        return eye + a * (m - eye)

    return run


# ----------------------------------------------------------------------------------------------------- driver


def main(argv: Sequence[str] | None = None) -> None:
    parser = dev_parser(__doc__)
    parser.add_argument("--dense", action="store_true", help="also rows of dense retrieval alone")
    parser.add_argument("--in-sample", action="store_true", help="train on all questions (memorisation check)")
    args = parser.parse_args(argv)

    import numpy as np

    dev = load_dev(args.cache)
    embed, index = dev.embed, dev.index
    sets: dict[str, Slice] = dev.sets

    own = sets[OWN]
    fold_of = grouped_folds(own)
    print("fold sizes:", [fold_of.count(f) for f in range(FOLDS)], file=sys.stderr)
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(index.papers):
        rows.setdefault(p, []).append(i)
    own_vecs = embed([q for _, q, _ in own])
    own_gold_rows = [[rows[p] for p in gold] for _, _, gold in own]
    others = {s: qs for s, qs in sets.items() if not s.startswith("own words")}
    own_slice_ids = {s: {qid for qid, _, _ in qs} for s, qs in sets.items() if s.startswith("own words")}

    # The lexical side does not depend on the query vector: memoise it so that only the dense side is re-run.
    lexical_memo: dict[str, Any] = {}
    real_search = index.lexical.search

    def memo_search(query: str, k: int = 50) -> Any:
        key = f"{k}\x00{query}"
        if key not in lexical_memo:
            lexical_memo[key] = real_search(query, k=k)
        return lexical_memo[key]

    index.lexical.search = memo_search  # type: ignore[method-assign]

    def rank(q: str, vec: Any, dense: bool) -> list[str]:
        return dense_only(index, vec) if dense else hybrid(index, q, vec)

    def unit(v: Any) -> Any:
        return v / np.linalg.norm(v)

    def evaluate(fit: Fit | None, dense: bool) -> tuple[dict[str, float], dict[str, float]]:
        """(nDCG@10 per slice, per own-words question id)."""
        per_q: dict[str, float] = {}
        other_scores: dict[str, list[float]] = {s: [] for s in others}
        for f in range(FOLDS):
            # --in-sample: train on every own-words question, held-out ones included (not a result: the gap to the
            # cross-validated row is what the adapter memorised of the papers it was trained on).
            train = [i for i in range(len(own)) if args.in_sample or fold_of[i] != f]
            m = None if fit is None else fit(own_vecs[train], [own_gold_rows[i] for i in train])

            def vec(q: str, m: Any = m) -> Any:
                v = embed.one(q)
                return v if m is None else unit(v @ m)

            for i in range(len(own)):
                if fold_of[i] == f:
                    qid, q, gold = own[i]
                    per_q[qid] = ndcg_one(rank(q, vec(q), dense), gold)
            for s, qs in others.items():
                other_scores[s].append(float(np.mean([ndcg_one(rank(q, vec(q), dense), g) for _, q, g in qs])))
            if fit is None:  # no training: every fold is the same
                for s in others:
                    other_scores[s] = other_scores[s] * FOLDS
                for i in range(len(own)):
                    qid, q, gold = own[i]
                    per_q[qid] = ndcg_one(rank(q, vec(q), dense), gold)
                break
        out = {s: float(np.mean([per_q[x] for x in ids])) for s, ids in own_slice_ids.items()}
        out.update({s: float(np.mean(v)) for s, v in other_scores.items()})
        return {s: out[s] for s in sets}, per_q

    variants: dict[str, Fit | None] = {"base: hybrid (default), no adapter": None}
    for how in ("best", "mean"):
        for lam in (1, 3, 10, 30, 100, 300):
            variants[f"ridge to I, target {how} chunk, lam {lam}"] = ridge(index, lam, how)
    for temp, mu, steps in ((0.05, 0.0, 100), (0.05, 0.1, 200), (0.05, 1.0, 200), (0.05, 0.01, 200)):
        variants[f"contrastive, T {temp}, mu {mu}, {steps} steps"] = contrastive(index, temp, mu, steps, 1e-3)
    for lr, steps in ((1e-4, 50), (1e-4, 100), (3e-4, 50)):
        variants[f"contrastive, T 0.05, lr {lr}, {steps} steps"] = contrastive(index, 0.05, 0.0, steps, lr)
    for form, lr, steps in (("diag", 1e-2, 50), ("diag", 1e-2, 100), ("rank8", 1e-3, 50), ("rank32", 1e-3, 50)):
        variants[f"contrastive, {form}, T 0.05, lr {lr}, {steps} steps"] = contrastive(
            index, 0.05, 0.0, steps, lr, form
        )
    for a in (0.5,):
        variants[f"ridge to I, target best chunk, lam 10, mix a {a}"] = mixed(ridge(index, 10, "best"), a)

    wanted = [w for w in args.only.split(",") if w]
    how = "trained on all (in-sample, not a result)" if args.in_sample else "5-fold CV"
    header = f"| variant, dev split, {how} | " + " | ".join(f"{s} ({len(q)})" for s, q in sets.items())
    print(header + " | own words better / worse |\n|---|" + "---|" * (len(sets) + 1), flush=True)
    base_scores, base_q = evaluate(None, False)
    for dense in [False, True] if args.dense else [False]:
        ref_q = evaluate(None, True)[1] if dense else base_q
        for name, fit in variants.items():
            if wanted and fit is not None and not any(w in name for w in wanted):
                continue
            t0 = time.perf_counter()
            scores, per_q = (base_scores, base_q) if (fit is None and not dense) else evaluate(fit, dense)
            better = sum(per_q[x] > ref_q[x] + 1e-9 for x in per_q)
            worse = sum(per_q[x] < ref_q[x] - 1e-9 for x in per_q)
            label = f"{name} (dense only)" if dense else name
            print(
                f"| {label} | " + " | ".join(f"{scores[s]:.3f}" for s in sets) + f" | {better} / {worse} |",
                flush=True,
            )
            print(f"  {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
