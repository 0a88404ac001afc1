"""What an indexed chunk is: its id and the exact text that is embedded and indexed lexically."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Chunk", "ChunkId", "embed_text"]


class ChunkId(NamedTuple):
    """``paper_id#stamp#number``. The stamp (content + chunking) is part of the id, so a changed abstract's new
    chunks never collide with its old ones: new chunks are written first and the old ones deleted after, and an
    ingest killed in between loses nothing. Paper ids may contain ``#``: parsing splits from the right."""

    paper_id: str
    stamp: str
    number: int

    def format(self) -> str:
        return f"{self.paper_id}#{self.stamp}#{self.number}"

    @classmethod
    def parse(cls, chunk_id: str) -> ChunkId:
        paper_id, stamp, number = chunk_id.rsplit("#", 2)
        return cls(paper_id, stamp, int(number))

    def sibling(self, number: int) -> ChunkId:
        """The chunk ``number`` of the same paper version."""
        return self._replace(number=number)


def embed_text(title: str, text: str) -> str:
    """The exact string embedded and indexed lexically for a chunk (llama-index's metadata format)."""
    return f"title: {title}\n\n{text}"


@dataclass(frozen=True)
class Chunk:
    """One chunk as ingest writes it: its id (``ChunkId.format()``), its text, the flat metadata stored with it
    (its paper's, plus ``stamp``, ``chunk`` and ``n_chunks``) and ``embedded``, the exact string embedded and
    indexed lexically (``embed_text`` of title and text, or the text alone when the title is left out)."""

    id: str
    text: str
    metadata: dict[str, str | int] = field(default_factory=dict)
    embedded: str = ""
