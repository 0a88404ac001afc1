"""What every input-format reader produces: accepted paper records and per-record rejections."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MAX_ABSTRACT_CHARS", "MIN_ABSTRACT_CHARS", "ReadResult", "Record", "Rejection"]

# Real abstracts here are 406-1,920 characters; arXiv's longest are ~3,000. Anything far above is not an
# abstract (a pasted full text, a broken export) and would dominate the index, so it is rejected.
MAX_ABSTRACT_CHARS = 20_000
MIN_ABSTRACT_CHARS = 20


@dataclass(frozen=True)
class Record:
    """One paper as read from a file, before dedup. ``paper_id`` is the source's own id when it has one."""

    title: str
    abstract: str
    source: str  # file name (and page) the record came from
    line: int  # 1-based line (or CSV row) in that file
    paper_id: str | None = None
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str | None = None
    arxiv_id: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rejection:
    """A record that could not be used, with where it was and why: shown to the user verbatim."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


@dataclass
class ReadResult:
    records: list[Record] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def extend(self, other: ReadResult) -> None:
        self.records.extend(other.records)
        self.rejections.extend(other.rejections)
