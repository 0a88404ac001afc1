"""Records that claim the same paper id but say different things: the later one wins (an update of the paper,
see ingest.dedup), and the user is told, with both file:line, instead of one silently replacing the other."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.records import Record

__all__ = ["id_conflicts"]


def id_conflicts(records: Sequence[Record]) -> list[str]:
    """One message per record whose id was already seen with a different title or abstract."""
    first: dict[str, Record] = {}
    messages: list[str] = []
    for rec in records:
        if not rec.paper_id:
            continue
        prev = first.setdefault(rec.paper_id, rec)
        if prev is rec:
            continue
        what = [f for f in ("title", "abstract") if getattr(prev, f) != getattr(rec, f)]
        if what:
            messages.append(
                f"{rec.source}:{rec.line}: duplicate id {rec.paper_id!r} with a different {' and '.join(what)} than "
                f"{prev.source}:{prev.line}; the later record is indexed"
            )
            first[rec.paper_id] = rec
    return messages
