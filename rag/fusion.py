"""Fusing dense and BM25 rankings, and folding chunk hits into papers (pure functions).

Why not plain reciprocal-rank fusion: RRF treats both lists as equally trustworthy for every query. On questions
that reuse an abstract's wording BM25 is nearly always right and sure of it (its top score stands far above the
rest); on questions in a user's own words BM25 scores are flat and its top hits are noise, and RRF lets that noise
halve the dense side's quality. So each side's z-scores are weighted by how sure that side is on *this* query:
how far its best score stands out from the rest of its list.

Measured on the dev sets in evals/datasets (paper-level nDCG@10; see docs/retrieval.md): dense 0.489 / 0.910,
BM25 0.976 / 0.881, RRF 0.725 / 0.930, this fusion 0.931 / 0.907 (wording-reuse / own-words questions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Hit", "fold_to_papers", "fuse_rrf", "fuse_zscore"]


@dataclass(frozen=True)
class Hit:
    """A scored chunk; ``paper_id`` lets hits be folded into papers."""

    chunk_id: str
    paper_id: str
    score: float


def fuse_rrf(rankings: Sequence[Sequence[Hit]], k: int = 60) -> list[Hit]:
    """Reciprocal-rank fusion (Cormack et al. 2009), the baseline."""
    scores: dict[str, float] = {}
    papers: dict[str, str] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (k + rank)
            papers[hit.chunk_id] = hit.paper_id
    return sorted((Hit(c, papers[c], s) for c, s in scores.items()), key=lambda h: -h.score)


def _zscores(hits: Sequence[Hit], pad_to: int = 0) -> tuple[dict[str, float], float, float]:
    """Per-hit z-scores within this query's list, the top hit's z (how far it stands out), and the z given to
    candidates missing from the list. ``pad_to``: the list is known to continue with zero scores up to this
    length (BM25 returns only documents sharing a term with the query; all others score exactly 0)."""
    scores = [h.score for h in hits]
    padded = scores + [0.0] * max(0, pad_to - len(scores))
    if len(padded) < 2:
        return {h.chunk_id: 0.0 for h in hits}, 0.0, 0.0
    mean = sum(padded) / len(padded)
    sd = (sum((x - mean) ** 2 for x in padded) / len(padded)) ** 0.5 or 1.0
    z = {h.chunk_id: (h.score - mean) / sd for h in hits}
    missing = (0.0 - mean) / sd if len(padded) > len(scores) else min(z.values())
    return z, (padded[0] - mean) / sd, missing


def fuse_zscore(dense: Sequence[Hit], lexical: Sequence[Hit], lexical_weight: float = 1.0, depth: int = 0) -> list[Hit]:
    """Confidence-weighted fusion: each side's z-scores, weighted by that side's top z-score.

    A side that is sure on this query (its best hit stands far above its other hits: BM25 on a question that
    reuses an abstract's rare terms) dominates; a side with a flat score list (BM25 on a question in a user's own
    words) barely moves the ranking. A hit missing from the dense list gets its lowest z; one missing from the
    BM25 list gets the z of a zero score (``depth``: how many candidates each side was asked for). Both best-first.
    """
    zd, top_d, low_d = _zscores(dense)
    zl, top_l, low_l = _zscores(lexical, pad_to=depth)
    wd, wl = max(top_d, 0.0), max(top_l, 0.0) * lexical_weight
    papers = {h.chunk_id: h.paper_id for h in (*dense, *lexical)}
    fused = {cid: wd * zd.get(cid, low_d) + wl * zl.get(cid, low_l) for cid in papers}
    return sorted((Hit(c, papers[c], s) for c, s in fused.items()), key=lambda h: (-h.score, h.chunk_id))


def fold_to_papers(hits: Sequence[Hit]) -> list[Hit]:
    """One entry per paper, best-first, keeping its best chunk (the hit with the highest score)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.paper_id not in best or hit.score > best[hit.paper_id].score:
            best[hit.paper_id] = hit
    return sorted(best.values(), key=lambda h: (-h.score, h.paper_id))
