"""Reader for the arXiv metadata snapshot (Kaggle ``arxiv-metadata-oai-snapshot.json``: JSON Lines)."""

from __future__ import annotations

from pathlib import Path

from ingest.formats.common import check_record, clean_text
from ingest.formats.tabular import (
    JsonObject,
    parse_authors,
    parse_categories,
    parse_year,
    read_json_records,
    reject_reason,
)
from ingest.records import ReadResult, Record, Rejection

__all__ = ["read_arxiv"]


def read_arxiv(path: Path) -> ReadResult:
    return read_json_records(path, _record)


def _record(obj: JsonObject, source: str, line: int) -> Record | Rejection:
    arxiv_id = clean_text(obj.get("id"))
    title = clean_text(obj.get("title"))
    abstract = clean_text(obj.get("abstract"))
    reason = check_record(title, abstract)
    if reason:
        return Rejection(source, line, reject_reason(reason, title))
    if not arxiv_id:
        return Rejection(source, line, f"missing arXiv 'id': {title[:80]!r}")
    # The first version's date is when the paper appeared; update_date moves with every revision.
    year = parse_year(_first_version_created(obj.get("versions")))
    return Record(
        title=title,
        abstract=abstract,
        source=source,
        line=line,
        paper_id=f"arxiv:{arxiv_id}",
        authors=parse_authors(obj.get("authors")),
        year=year if year is not None else parse_year(obj.get("update_date")),
        url=f"https://arxiv.org/abs/{arxiv_id}",
        arxiv_id=arxiv_id,
        categories=parse_categories(obj.get("categories")),
    )


def _first_version_created(versions: object) -> object:
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        return versions[0].get("created")
    return None
