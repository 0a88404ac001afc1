"""Every record read from a file goes through ``rag.text_normalize`` here, whatever its format: the content hash,
the chunks, the BM25 index and the questions then all see one form of the text. A record whose title or abstract
held undecodable characters is rejected with its file:line (like a line of invalid UTF-8); the rest of the file
and of the run goes on."""

from __future__ import annotations

from dataclasses import fields, replace

from ingest.formats.common import check_record
from ingest.formats.tabular import reject_reason
from ingest.records import ReadResult, Record, Rejection
from rag.text_normalize import normalize_text

__all__ = ["sanitize_record", "sanitize_result"]

_CHECKED = ("title", "abstract")  # a bad character in these is a bad record; elsewhere it is just replaced


def _clean(value: str) -> tuple[str, int]:
    norm = normalize_text(value)
    return " ".join(norm.text.split()), norm.invalid  # removing a zero-width character can leave double spaces


def sanitize_record(record: Record) -> Record | Rejection:
    """``record`` with every text normalised, or a Rejection naming the field that held invalid characters."""
    changes: dict[str, object] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name in ("source", "line"):
            continue
        if isinstance(value, str):
            text, invalid = _clean(value)
            if invalid and f.name in _CHECKED:
                s = "s" if invalid > 1 else ""
                return Rejection(
                    record.source,
                    record.line,
                    f"invalid Unicode in the {f.name}: {invalid} lone surrogate{s} or undecodable byte{s} "
                    f"(fix the file's encoding): {text[:80]!r}",
                )
            changes[f.name] = text or (None if f.default is None else "")
        elif isinstance(value, tuple):
            changes[f.name] = tuple(t for t in (_clean(v)[0] for v in value) if t)
    cleaned = replace(record, **changes)  # type: ignore[arg-type]
    reason = check_record(cleaned.title, cleaned.abstract)  # a title of zero-width spaces is no title
    if reason:
        return Rejection(record.source, record.line, reject_reason(reason, cleaned.title))
    return cleaned


def sanitize_result(result: ReadResult) -> ReadResult:
    """The records of ``result`` normalised; bad ones moved to its rejections (in line order)."""
    out = ReadResult(rejections=list(result.rejections))
    for record in result.records:
        made = sanitize_record(record)
        if isinstance(made, Rejection):
            out.rejections.append(made)
        else:
            out.records.append(made)
    out.rejections.sort(key=lambda r: (r.source, r.line))
    return out
