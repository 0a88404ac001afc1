"""Chunking: each abstract becomes as few chunks as fit the embedding window, cut at sentence boundaries,
balanced in size, each carrying its paper's title.

Why not llama-index's SentenceSplitter: it packs greedily, so a 270-token abstract becomes a 250-token chunk and
a 20-token tail whose embedding is mostly title. Balanced packing gives two ~135-token halves instead. The chunks
are ``rag.chunks.Chunk``s, not llama-index ``TextNode``s: the store writes them to Chroma directly, and the embedded
text is ``rag.chunks.embed_text``'s, the one definition BM25 and the queries share (a ``TextNode`` template would
be a second), without importing llama-index (2.5 s) into every ingest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from rag.chunks import Chunk, ChunkId, embed_text
from rag.sentences import split_sentences
from rag.types import Paper, TokenCounter

__all__ = [
    "CHUNKER_VERSION",
    "balanced_groups",
    "chunk_paper",
    "chunk_stamp",
]

# [CLS] and [SEP] that the model adds around every input.
_SPECIAL_TOKENS = 2


CHUNKER_VERSION = "balanced-v4"  # a new version rewrites every paper's chunks on the next ingest


def chunk_stamp(paper: Paper, max_tokens: int, prefix_title: bool) -> str:
    """Identifies a paper's content *and* how it was chunked: a change in either means new chunks."""
    sig = f"{paper.content_hash}|{CHUNKER_VERSION}|{max_tokens}|{int(prefix_title)}"
    return hashlib.sha1(sig.encode()).hexdigest()[:12]


def balanced_groups(sizes: Sequence[int], budget: int) -> list[list[int]]:
    """Split consecutive items into the fewest groups whose summed size is <= budget, as even as possible.

    Items larger than the budget must have been split beforehand. Linear partition by binary search on the
    largest group size: O(n log total), n is ~10 sentences here.
    """
    if not sizes:
        return []
    if max(sizes) > budget:
        raise ValueError("an item is larger than the budget")
    total = sum(sizes)
    k = math.ceil(total / budget)

    def pack(limit: int) -> list[list[int]] | None:
        groups: list[list[int]] = [[]]
        acc = 0
        for i, s in enumerate(sizes):
            if groups[-1] and acc + s > limit:
                groups.append([])
                acc = 0
            groups[-1].append(i)
            acc += s
        return groups if len(groups) <= k else None

    lo, hi = max(max(sizes), math.ceil(total / k)), budget
    while True:
        # The smallest limit that still packs into k groups; if none does (greedy bound), allow one more group.
        best = None
        a, b = lo, hi
        while a <= b:
            mid = (a + b) // 2
            got = pack(mid)
            if got is not None:
                best, b = got, mid - 1
            else:
                a = mid + 1
        if best is not None:
            return best
        k += 1


def _split_long(sentence: str, budget: int, count: TokenCounter) -> list[str]:
    """A sentence longer than the window is cut into word runs that fit, so none of it goes unembedded."""
    words = sentence.split()
    pieces: list[str] = []
    cur: list[str] = []
    for w in words:
        if cur and count(" ".join([*cur, w])) > budget:
            pieces.append(" ".join(cur))
            cur = []
        cur.append(w)
    if cur:
        pieces.append(" ".join(cur))
    return pieces


def chunk_paper(paper: Paper, max_tokens: int, count: TokenCounter, prefix_title: bool = True) -> list[Chunk]:
    """Chunks of one paper with ids, metadata and (``prefix_title``) the title in the embedded text."""
    stamp = chunk_stamp(paper, max_tokens, prefix_title)
    overhead = _SPECIAL_TOKENS + (count(embed_text(paper.title, "")) if prefix_title else 0)
    # A title longer than half the window would leave no room: cut it out of the embedded text instead.
    if overhead > max_tokens // 2:
        prefix_title, overhead = False, _SPECIAL_TOKENS
    budget = max_tokens - overhead
    sentences: list[str] = []
    sizes: list[int] = []  # joining sentences with a space costs no extra word-pieces: group size = sum of sizes
    for s in split_sentences(paper.abstract):
        size = count(s)
        if size <= budget:
            sentences.append(s)
            sizes.append(size)
            continue
        for piece in _split_long(s, budget, count):
            sentences.append(piece)
            sizes.append(count(piece))
    groups = balanced_groups(sizes, budget)
    meta: dict[str, str | int] = {**paper.chroma_metadata(), "stamp": stamp}
    n = len(groups)
    chunks: list[Chunk] = []
    for i, g in enumerate(groups):
        text = " ".join(sentences[j] for j in g)
        chunks.append(
            Chunk(
                id=ChunkId(paper.paper_id, stamp, i).format(),
                text=text,
                metadata={**meta, "chunk": i, "n_chunks": n},
                embedded=embed_text(paper.title, text) if prefix_title else text,
            )
        )
    return chunks
