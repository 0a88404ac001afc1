"""Checks and text helpers shared by every reader."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.records import MAX_ABSTRACT_CHARS, MIN_ABSTRACT_CHARS

__all__ = ["FormatError", "check_record", "clean_text", "read_text"]

_WS = re.compile(r"\s+")


class FormatError(ValueError):
    """The whole file cannot be read (binary, wrong format, empty); the message names the file."""


def clean_text(value: object) -> str:
    """Collapse whitespace; ``None`` and non-strings other than numbers become ''."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        return ""
    return _WS.sub(" ", value).strip()


def check_record(title: str, abstract: str) -> str | None:
    """Why a (title, abstract) pair cannot be indexed, or None when it can."""
    if not title:
        return "missing title"
    if not abstract:
        return "missing abstract (title-only entry)"
    if len(abstract) < MIN_ABSTRACT_CHARS:
        return f"abstract too short ({len(abstract)} chars, need >= {MIN_ABSTRACT_CHARS})"
    if len(abstract) > MAX_ABSTRACT_CHARS:
        return f"abstract too long ({len(abstract):,} chars, limit {MAX_ABSTRACT_CHARS:,}): not an abstract?"
    if len(title) > 1_000:
        return f"title too long ({len(title):,} chars)"
    return None


def read_text(path: Path) -> tuple[str, list[int]]:
    """Decode a text file as UTF-8 (BOM tolerated).

    Returns the text and the 1-based line numbers that held invalid UTF-8 (decoded with U+FFFD so the
    reader can reject exactly those records and keep the rest). Raises FormatError for binary or empty files.
    """
    data = path.read_bytes()
    if not data.strip():
        raise FormatError(f"{path.name}: file is empty")
    if b"\x00" in data[:8192]:
        raise FormatError(f"{path.name}: binary file (NUL bytes), not a text corpus")
    text = data.decode("utf-8-sig", errors="replace")
    bad_lines: list[int] = []
    if "\ufffd" in text:
        for i, line in enumerate(data.split(b"\n"), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                bad_lines.append(i)
        if len(bad_lines) > max(10, len(data.split(b"\n")) // 2):
            raise FormatError(f"{path.name}: not UTF-8 text ({len(bad_lines)} lines with invalid bytes)")
    return text, bad_lines
