"""Pick a reader for a file from its extension and, for JSON, the keys of its first object."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.formats.common import FormatError

__all__ = ["SUFFIXES", "detect_format"]

SUFFIXES = (".txt", ".jsonl", ".json", ".csv", ".tsv")
# Enough for the first few records of any of the formats; the arXiv snapshot is ~4 GB, so never read it all.
_PEEK_BYTES = 1 << 20
_PEEK_LINES = 10


def detect_format(path: Path) -> str:
    """One of "hf-pages", "jsonl", "csv", "arxiv", "beir"; FormatError (naming the file) otherwise."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        hint = "; PDFs are not supported, export titles and abstracts as JSONL or CSV"
        hint = hint if suffix == ".pdf" else ""
        raise FormatError(
            f"{path.name}: unknown format {suffix or '(no extension)'!r}, expected one of {', '.join(SUFFIXES)}{hint}"
        )
    head = _peek(path)
    if suffix == ".txt":
        return "hf-pages"
    if suffix in (".csv", ".tsv"):
        return "csv"
    keys = set(_first_object(head))
    if {"_id", "text"} <= keys:
        return "beir"
    if {"id", "abstract"} <= keys and keys & {"versions", "update_date"}:
        return "arxiv"
    return "jsonl"


def _peek(path: Path) -> str:
    try:
        with path.open("rb") as f:
            data = f.read(_PEEK_BYTES)
    except OSError as e:
        raise FormatError(f"{path.name}: cannot read ({e.strerror or e})") from e
    # Same checks as common.read_text, made here so detection fails with the real reason, not "unknown".
    if not data.strip():
        raise FormatError(f"{path.name}: file is empty")
    if b"\x00" in data[:8192]:
        raise FormatError(f"{path.name}: binary file (NUL bytes), not a text corpus")
    return data.decode("utf-8-sig", errors="replace")


def _first_object(head: str) -> dict[str, object]:
    """The first JSON object in a JSON Lines text or a JSON array; {} if none is readable in the head."""
    stripped = head.lstrip()
    if stripped.startswith("["):
        try:
            value, _ = json.JSONDecoder().raw_decode(stripped[1:].lstrip())
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    # Several lines, because the first may be a broken record; the head's last line may be cut off.
    lines = [line for line in head.split("\n") if line.strip()][:_PEEK_LINES]
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {}
