"""Fusing dense and BM25 rankings, and folding chunk hits into papers (pure functions).

Why not plain reciprocal-rank fusion: RRF treats both lists as equally trustworthy for every query. On questions
that reuse an abstract's wording BM25 is nearly always right and sure of it (its top score stands far above the
rest); on questions in a user's own words BM25 scores are flat and its top hits are noise, and RRF lets that noise
halve the dense side's quality. So each side's z-scores are weighted by how sure that side is on *this* query:
how far its best score stands out from the rest of its list.

Phrase evidence. BM25 scores words one by one, so a question that copies a generic sentence fragment ("the
proposed approach demonstrates state-of-the-art or comparable performance") matches many abstracts about equally
and BM25's margin is small, although one chunk holds the fragment verbatim. Before fusing, each BM25 hit's score
is multiplied by ``1 + PHRASE_WEIGHT * phrase_coverage``: the share of the question's adjacent content-word pairs
that are adjacent in the chunk too (ordered-bigram evidence, as in Metzler & Croft's sequential dependence model).
A question in the user's own words shares few such pairs with any chunk, so its BM25 list barely changes; a
question quoting a chunk triples that chunk's score, which then also stands out, so the confidence weighting
trusts BM25 on it. The cost is linear in the candidates' text (the BM25 hits only), never in the corpus.

Lexical gate. The margin of a BM25 list says how sure BM25 is, not whether it matched what the question is
about: a question in a user's own words still shares a few ordinary words with many abstracts, and its BM25
list can have a clear top hit that is wrong. What tells such questions apart is how much of the query's term
weight the top BM25 hit matched: ``coverage`` = its score / the best score any chunk could reach on the query
(``LexicalIndex.attainable``). Questions that reuse an abstract's wording match 0.6-0.9 of it; own-words
questions described without the paper's vocabulary match ~0.2 (dev medians, docs/retrieval.md). The BM25 side's
weight is scaled by ``lexical_gate(coverage)``: 0 below ``GATE_LOW``, 1 above ``GATE_HIGH``, linear between.

Numbers and the choice of every constant here: docs/retrieval.md (dev split; the test split is only reported).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

__all__ = [
    "GATE_HIGH",
    "GATE_LOW",
    "PHRASE_WEIGHT",
    "Hit",
    "fold_to_papers",
    "fuse_rrf",
    "fuse_zscore",
    "lexical_gate",
    "phrase_boost",
    "phrase_coverage",
    "phrase_pairs",
    "phrase_terms",
]

# A chunk holding every adjacent content-word pair of the question gets its BM25 score tripled. Chosen on the dev
# sets (docs/retrieval.md): any weight from 0.5 to 3 puts every wording-reuse question's paper first; 1.5 to 3 also
# gives the best own-words score; 4 starts to hurt the curated dev questions.
PHRASE_WEIGHT = 2.0
# Chosen on the own-words dev split (docs/retrieval.md): the smallest gate that keeps no-vocabulary questions
# within 0.01 of dense retrieval while questions with some of the paper's words keep BM25's help.
GATE_LOW, GATE_HIGH = 0.25, 0.4

# bm25s's English stop words (bm25s.stopwords.STOPWORDS_EN, what the BM25 side drops; a test keeps them equal) and
# its token pattern, so "content word" means the same thing on both lexical signals. Copied: importing bm25s
# costs ~0.8 s.
STOPWORDS = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not"}
    | {"of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was"}
    | {"will", "with"}
)
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


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


def lexical_gate(coverage: float, low: float = GATE_LOW, high: float = GATE_HIGH) -> float:
    """Weight of the BM25 side for a query whose best BM25 hit matched ``coverage`` of its attainable score."""
    if coverage <= low:
        return 0.0
    return min(1.0, (coverage - low) / (high - low))


def phrase_terms(text: str) -> list[str]:
    """The content words of ``text`` in order: lower-cased words of two or more characters, stop words dropped.
    Not stemmed: a phrase match is about reusing the wording itself."""
    return [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]


def phrase_pairs(text: str) -> set[tuple[str, str]]:
    """Adjacent content-word pairs of ``text`` (stop words in between are skipped: "state of the art" gives
    ("state", "art"))."""
    words = phrase_terms(text)
    return set(pairwise(words))


def phrase_coverage(query: str, fields: Sequence[str]) -> float:
    """Share of the query's adjacent content-word pairs that occur adjacent in one of ``fields`` (a chunk's title
    and text; a pair never spans two fields). 0 for a query with fewer than two content words."""
    return _coverage(phrase_pairs(query), fields)


def _coverage(wanted: set[tuple[str, str]], fields: Sequence[str]) -> float:
    if not wanted:
        return 0.0
    found: set[tuple[str, str]] = set()
    for text in fields:
        found |= wanted & phrase_pairs(text)
    return len(found) / len(wanted)


def phrase_boost(
    query: str, lexical: Sequence[Hit], fields: Mapping[str, Sequence[str]], weight: float = PHRASE_WEIGHT
) -> list[Hit]:
    """BM25 hits rescored with phrase evidence, best first: ``score * (1 + weight * phrase_coverage)``.

    ``fields``: chunk id -> that chunk's texts (title, text); a hit without texts (a chunk deleted meanwhile)
    keeps its score. Scores stay in BM25 units, so ``fuse_zscore`` weighs the result like a BM25 list."""
    wanted = phrase_pairs(query)
    if not wanted:
        return list(lexical)
    boosted = [
        Hit(h.chunk_id, h.paper_id, h.score * (1.0 + weight * _coverage(wanted, fields.get(h.chunk_id, ()))))
        for h in lexical
    ]
    return sorted(boosted, key=lambda h: (-h.score, h.chunk_id))


def fold_to_papers(hits: Sequence[Hit]) -> list[Hit]:
    """One entry per paper, best-first, keeping its best chunk (the hit with the highest score)."""
    best: dict[str, Hit] = {}
    for hit in hits:
        if hit.paper_id not in best or hit.score > best[hit.paper_id].score:
            best[hit.paper_id] = hit
    return sorted(best.values(), key=lambda h: (-h.score, h.paper_id))
