"""Reader for a BEIR ``corpus.jsonl``: ``{"_id", "title", "text", "metadata"}`` per line."""

from __future__ import annotations

from pathlib import Path

from ingest.formats.common import check_record, clean_text
from ingest.formats.tabular import JsonObject, parse_url, parse_year, read_json_records, reject_reason
from ingest.records import ReadResult, Record, Rejection

__all__ = ["read_beir"]


def read_beir(path: Path) -> ReadResult:
    return read_json_records(path, _record)


def _record(obj: JsonObject, source: str, line: int) -> Record | Rejection:
    doc_id = clean_text(obj.get("_id"))
    if not doc_id:
        return Rejection(source, line, "missing '_id'")
    # Several BEIR corpora have empty titles; the id still lets a citation point at the document.
    title = clean_text(obj.get("title")) or doc_id
    abstract = clean_text(obj.get("text"))
    reason = check_record(title, abstract)
    if reason:
        return Rejection(source, line, reject_reason(reason, title))
    metadata = obj.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    return Record(
        title=title,
        abstract=abstract,
        source=source,
        line=line,
        paper_id=doc_id,
        year=parse_year(meta.get("year")),
        url=parse_url(meta.get("url")),
    )
