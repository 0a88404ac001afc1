"""Decide what an ingest must write and delete, from the papers read and what Chroma holds (pure logic).

Chroma is the source of truth: every chunk carries its paper id, the paper's stamp (content + chunking) and the
paper's chunk count. A paper is unchanged only when exactly its current stamp is stored, complete, and nothing
else; anything else (new, changed, half-written by a killed ingest, leftovers of an old version) is rewritten
and its stale chunks deleted. That is what makes a re-run after SIGKILL end with exactly the right chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.chunks import ChunkId
from rag.types import Paper

__all__ = ["IngestPlan", "StoredState", "plan_ingest"]

# paper_id -> stamp -> [(chunk id, n_chunks recorded on that chunk)]
StoredState = dict[str, dict[str, list[tuple[str, int]]]]


@dataclass
class IngestPlan:
    write: list[Paper] = field(default_factory=list)  # papers whose current chunks must be (re)written
    new: int = 0
    updated: int = 0
    repaired: int = 0
    unchanged: int = 0
    stale_ids: list[str] = field(default_factory=list)  # chunks to delete once the writes are done


def _complete(chunks: list[tuple[str, int]]) -> bool:
    n = chunks[0][1]
    indices = {ChunkId.parse(cid).number for cid, _ in chunks}
    return n > 0 and len(chunks) == n and all(c[1] == n for c in chunks) and indices == set(range(n))


def plan_ingest(papers: list[Paper], stamps: dict[str, str], stored: StoredState) -> IngestPlan:
    """``stamps`` maps each paper id to the stamp its chunks get now."""
    plan = IngestPlan()
    for paper in papers:
        stamp = stamps[paper.paper_id]
        have = stored.get(paper.paper_id, {})
        current = have.get(stamp)
        others = [cid for s, chunks in have.items() if s != stamp for cid, _ in chunks]
        if current and _complete(current):
            if others:
                plan.repaired += 1
                plan.stale_ids.extend(others)
            else:
                plan.unchanged += 1
            continue
        plan.write.append(paper)
        if not have:
            plan.new += 1
        elif current:
            plan.repaired += 1  # its current version was half-written
        else:
            plan.updated += 1
        plan.stale_ids.extend(others)
    return plan
