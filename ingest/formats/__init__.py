"""Input formats: read a file (or a tree of files) into paper records plus per-record rejections.

Per-record problems become :class:`~ingest.records.Rejection` s and never stop a file; whole-file
problems raise :class:`FormatError` from :func:`read_file` and are collected as messages by
:func:`read_paths`, so one bad file never stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.formats.arxiv import read_arxiv
from ingest.formats.beir import read_beir
from ingest.formats.common import FormatError
from ingest.formats.detect import SUFFIXES, detect_format
from ingest.formats.hf_pages import read_hf_pages
from ingest.formats.sanitize import sanitize_result
from ingest.formats.tabular import read_csv, read_jsonl
from ingest.records import ReadResult

__all__ = ["FORMATS", "READERS", "SUFFIXES", "FormatError", "detect_format", "read_file", "read_paths"]

READERS: dict[str, Callable[[Path], ReadResult]] = {
    "hf-pages": read_hf_pages,
    "jsonl": read_jsonl,
    "csv": read_csv,
    "arxiv": read_arxiv,
    "beir": read_beir,
}
"""Each input format's reader (the one list: CLI choices, the UI's dropdown and detection name these)."""
FORMATS = tuple(READERS)


def read_file(path: Path, fmt: str | None = None) -> ReadResult:
    """Read one file, detecting its format when ``fmt`` is None. Raises FormatError naming the file."""
    fmt = detect_format(path) if fmt is None else fmt
    reader = _reader(fmt, path)
    try:
        return sanitize_result(reader(path))
    except OSError as e:
        raise FormatError(f"{path.name}: cannot read ({e.strerror or e})") from e


def read_paths(paths: Iterable[Path], fmt: str | None = None) -> tuple[ReadResult, list[str]]:
    """Read files and directories (searched recursively for known extensions, hidden entries skipped).

    Returns everything readable plus one message per file that could not be read at all. Raises
    ValueError only for an unknown ``fmt``, which is a usage error rather than a problem with any file.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    result = ReadResult()
    errors: list[str] = []
    seen: set[Path] = set()
    for path in _expand(paths, errors):
        key = path.resolve()
        if key in seen:  # a file named both directly and through its directory
            continue
        seen.add(key)
        try:
            result.extend(read_file(path, fmt))
        except FormatError as e:
            errors.append(str(e))
    return result, errors


def _expand(paths: Iterable[Path], errors: list[str]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
            if not found:
                errors.append(f"{path}: no {', '.join(SUFFIXES)} files in this directory")
            files.extend(found)
        elif path.exists():
            # Named explicitly: read whatever the extension, so an unsupported one gets a clear error.
            files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return files


def _reader(fmt: str, path: Path) -> Callable[[Path], ReadResult]:
    if fmt not in READERS:
        raise FormatError(f"{path.name}: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return READERS[fmt]
