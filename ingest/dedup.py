"""Turn raw records into distinct papers with stable ids.

The same paper appears on several pages; one title is shared by two different papers; one copy of a paper had
"mAP@0.5" replaced by Cloudflare's "[email protected]". So records are grouped by id (when the source has
one) or by normalised title, and within a title group split by abstract similarity.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from difflib import SequenceMatcher
from typing import Any

from ingest.records import Record
from rag.types import Paper

__all__ = ["SAME_ABSTRACT_RATIO", "dedup", "normalise_title", "title_id"]

# Copies of one abstract that differ by scraping artefacts score > 0.97; the two different papers titled
# "Natural Language Reinforcement Learning" score ~0.3. 0.9 leaves a wide margin on both sides.
SAME_ABSTRACT_RATIO = 0.9
_CLOUDFLARE = "[email protected]"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalise_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    return _NON_ALNUM.sub(" ", text).strip()


def title_id(title: str, abstract: str | None = None) -> str:
    """Readable, stable id: a slug of the title plus a short hash (plus the abstract's, to split homonyms)."""
    norm = normalise_title(title)
    slug = norm.replace(" ", "-")[:48].rstrip("-") or "untitled"
    digest = hashlib.sha1(norm.encode()).hexdigest()[:8]
    if abstract is not None:
        digest += "-" + hashlib.sha1(abstract.encode()).hexdigest()[:6]
    return f"{slug}-{digest}"


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    m = SequenceMatcher(None, a, b, autojunk=False)
    return m.quick_ratio() >= SAME_ABSTRACT_RATIO and m.ratio() >= SAME_ABSTRACT_RATIO


def _best(records: list[Record]) -> Record:
    # Prefer a copy without the obfuscation artefact; otherwise the first one seen.
    clean = [r for r in records if _CLOUDFLARE not in r.abstract and _CLOUDFLARE not in r.title]
    return (clean or records)[0]


def _merge(paper_id: str, records: list[Record]) -> Paper:
    best = _best(records)

    def first(attr: str) -> Any:
        return next((getattr(r, attr) for r in records if getattr(r, attr)), None)

    return Paper(
        paper_id=paper_id,
        title=best.title,
        abstract=best.abstract,
        sources=tuple(sorted({r.source for r in records})),
        authors=best.authors or first("authors") or (),
        year=best.year if best.year is not None else first("year"),
        url=best.url or first("url"),
        arxiv_id=best.arxiv_id or first("arxiv_id"),
        categories=best.categories or first("categories") or (),
    )


def dedup(records: list[Record]) -> list[Paper]:
    """Distinct papers in first-seen order."""
    by_id: dict[str, list[Record]] = defaultdict(list)
    by_title: dict[str, list[list[Record]]] = defaultdict(list)  # title -> clusters of similar abstracts
    order: list[tuple[str, str, int]] = []  # (kind, key, cluster index) in first-seen order
    for rec in records:
        if rec.paper_id:
            if rec.paper_id not in by_id:
                order.append(("id", rec.paper_id, 0))
            # A later record with the same id is an update of the paper: it wins.
            by_id[rec.paper_id].insert(0, rec)
            continue
        key = normalise_title(rec.title)
        clusters = by_title[key]
        for cluster in clusters:
            if _similar(cluster[0].abstract, rec.abstract):
                cluster.append(rec)
                break
        else:
            clusters.append([rec])
            order.append(("title", key, len(clusters) - 1))
    papers: list[Paper] = []
    for kind, key, idx in order:
        if kind == "id":
            papers.append(_merge(key, by_id[key]))
            continue
        clusters = by_title[key]
        cluster = clusters[idx]
        best = _best(cluster)
        pid = title_id(best.title) if len(clusters) == 1 else title_id(best.title, best.abstract)
        papers.append(_merge(pid, cluster))
    return papers
