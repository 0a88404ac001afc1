"""Generic readers: JSON Lines (or a ``.json`` array of objects) and CSV/TSV with a header row.

The JSON walking and field parsing live here too because the arXiv and BEIR readers reuse them, so every
JSON format reports bad lines with the same wording.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from ingest.formats.common import FormatError, check_record, clean_text, read_text
from ingest.records import ReadResult, Record, Rejection

__all__ = [
    "BAD_UTF8",
    "JsonObject",
    "iter_json_objects",
    "optional_text",
    "parse_authors",
    "parse_categories",
    "parse_url",
    "parse_year",
    "read_csv",
    "read_json_records",
    "read_jsonl",
    "record_from_mapping",
    "reject_reason",
]

BAD_UTF8 = "invalid UTF-8 bytes"
JsonObject = dict[str, object]
ToRecord = Callable[[JsonObject, str, int], Record | Rejection]
# (first line, last line, parsed value, error): one JSON value as found in the file.
_Item = tuple[int, int, object, str | None]

# A whole abstract sits in one CSV field; the csv module's 128 KiB default would abort the file on a huge
# one, whereas check_record should reject just that row. 2**31-1 is the largest value every platform accepts.
_CSV_FIELD_LIMIT = 2**31 - 1
_CSV_ERRORS = {
    "unexpected end of data": "a quoted field is never closed",
    "new-line character seen in unquoted field": "a bare carriage return inside an unquoted field",
    "expected after '\"'": 'text after a closing quote (an unescaped " inside a quoted field?)',
}
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_PARENS = re.compile(r"\([^()]*\)")
_AUTHOR_SEP = re.compile(r"\s*(?:,|\band\b|&)\s*")
_CATEGORY_SEP = re.compile(r"[\s,;]+")


# --- JSON -------------------------------------------------------------------------------------------------


def iter_json_objects(path: Path) -> Iterator[tuple[int, JsonObject] | Rejection]:
    """Yield ``(line, object)`` for each JSON object, or a Rejection for each line that is not one.

    Raises FormatError when no line parses as JSON at all: that is a file in the wrong format, and one
    rejection per line would bury the real problem.
    """
    text, bad_lines = read_text(path)
    bad = set(bad_lines)
    source = path.name
    # A .jsonl line may itself be an array (a bad record); only a .json file can be one big array.
    is_array = path.suffix.lower() != ".jsonl" and text.lstrip().startswith("[")
    items = _walk_array(text) if is_array else _walk_lines(text)
    parsed = 0
    first_error = ""
    for first, last, value, error in items:
        if bad.intersection(range(first, last + 1)):
            yield Rejection(source, first, BAD_UTF8)
        elif error is not None:
            first_error = first_error or f"line {first}: {error}"
            yield Rejection(source, first, error)
        elif not isinstance(value, dict):
            parsed += 1
            yield Rejection(source, first, f"expected a JSON object, got {_json_type(value)}")
        else:
            parsed += 1
            yield first, {str(k): v for k, v in value.items()}
    if parsed == 0 and first_error:
        raise FormatError(
            f"{source}: not JSON Lines or a JSON array of objects ({first_error}); expected one JSON object per line"
        )


def _walk_lines(text: str) -> Iterator[_Item]:
    for n, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, n, None, _json_error(e, line)
            continue
        yield n, n, value, None


def _walk_array(text: str) -> Iterator[_Item]:
    """Decode a top-level array one element at a time so each record keeps its own line number, and the
    elements before a syntax error are still used."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, text.index("[") + 1)
    line, counted = 1, 0
    while pos < len(text) and text[pos] != "]":
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            if e.msg.startswith("Unterminated") or e.pos >= len(text.rstrip()):
                reason = "invalid JSON: the file ends in the middle of this record (truncated?)"
            else:
                reason = f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}; rest of the array skipped"
            yield line, line, None, reason
            return
        yield line, line + text.count("\n", pos, end), value, None
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] not in ",]":
            line += text.count("\n", counted, pos)
            yield line, line, None, "invalid JSON: expected ',' or ']' here; rest of the array skipped"
            return
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
    line += text.count("\n", counted, pos)
    if pos >= len(text):
        yield line, line, None, "invalid JSON: array is not closed with ']' (file truncated?)"
    elif text[pos + 1 :].strip():
        yield line, line, None, "invalid JSON: text after the closing ']' ignored"


def _json_error(error: json.JSONDecodeError, line: str) -> str:
    # A cut-off export is the common case; say so rather than quoting the parser's view of it.
    if error.msg.startswith("Unterminated") or error.pos >= len(line):
        return "invalid JSON: the line ends in the middle of a record (truncated?)"
    return f"invalid JSON at column {error.colno}: {error.msg}"


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def read_json_records(path: Path, to_record: ToRecord) -> ReadResult:
    result = ReadResult()
    for item in iter_json_objects(path):
        made = item if isinstance(item, Rejection) else to_record(item[1], path.name, item[0])
        if isinstance(made, Rejection):
            result.rejections.append(made)
        else:
            result.records.append(made)
    return result


def read_jsonl(path: Path) -> ReadResult:
    return read_json_records(path, record_from_mapping)


# --- CSV --------------------------------------------------------------------------------------------------


def read_csv(path: Path) -> ReadResult:
    """Read a CSV/TSV whose header names at least ``title`` and ``abstract`` (or ``summary``).

    Records are numbered by the physical line their row starts on, so quoted multi-line abstracts do not
    shift the line numbers of later rows.
    """
    text, bad_lines = read_text(path)
    bad = set(bad_lines)
    source = path.name
    lines = text.split("\n")
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    # Feeding our own "\n"-split lines (not io.StringIO) keeps line_num in step with read_text's numbering.
    # strict: a stray quote rejects that row instead of silently merging it with the rows after it.
    reader = csv.reader((line + "\n" for line in lines), delimiter=_delimiter(path, lines), strict=True)
    header: list[str] | None = None
    result = ReadResult()
    end = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            end = reader.line_num
            if header is None:
                raise FormatError(f"{source}:{start}: header row: {_csv_error(e)}") from e
            result.rejections.append(Rejection(source, start, _csv_error(e)))
            continue
        end = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = _check_header(row, source)
        elif bad.intersection(range(start, end + 1)):
            result.rejections.append(Rejection(source, start, BAD_UTF8))
        elif len(row) > len(header):
            reason = f"{len(row)} fields but the header has {len(header)} (unquoted delimiter in a field?)"
            result.rejections.append(Rejection(source, start, reason))
        else:
            made = record_from_mapping(dict(zip(header, row, strict=False)), source, start)
            if isinstance(made, Rejection):
                result.rejections.append(made)
            else:
                result.records.append(made)
    if header is None:
        raise FormatError(f"{source}: no CSV header row")
    return result


def _delimiter(path: Path, lines: list[str]) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = next((line for line in lines if line.strip()), "")
    # Spreadsheet exports in some locales use ";"; on a tie "," wins as the documented default.
    return max((",", "\t", ";"), key=first.count)


def _csv_error(error: csv.Error) -> str:
    # The csv module's wording assumes a programmer reading it; say what is wrong in the file instead.
    text = str(error)
    for fragment, meaning in _CSV_ERRORS.items():
        if fragment in text:
            return f"malformed CSV row: {meaning}"
    return f"malformed CSV row: {text}"


def _check_header(row: list[str], source: str) -> list[str]:
    header = [cell.strip().lower() for cell in row]
    if "title" not in header or not {"abstract", "summary"} & set(header):
        found = ", ".join(repr(h) for h in header)[:200]
        raise FormatError(f"{source}: CSV header needs 'title' and 'abstract' columns (found: {found})")
    return header


# --- fields -----------------------------------------------------------------------------------------------


def record_from_mapping(row: Mapping[str, object], source: str, line: int) -> Record | Rejection:
    """The generic schema shared by JSON Lines and CSV (keys are matched case-insensitively)."""
    row = {k.strip().lower(): v for k, v in row.items()}
    title = clean_text(row.get("title"))
    abstract = clean_text(row.get("abstract")) or clean_text(row.get("summary"))
    reason = check_record(title, abstract)
    if reason:
        return Rejection(source, line, reject_reason(reason, title))
    arxiv_id = optional_text(row.get("arxiv_id"))
    return Record(
        title=title,
        abstract=abstract,
        source=source,
        line=line,
        paper_id=optional_text(row.get("id")) or optional_text(row.get("paper_id")) or arxiv_id,
        authors=parse_authors(row.get("authors")),
        year=parse_year(row.get("year")),
        url=parse_url(row.get("url")),
        arxiv_id=arxiv_id,
        categories=parse_categories(row.get("categories")),
    )


def reject_reason(reason: str, title: str) -> str:
    """check_record's reason plus the title, so the user can find the entry without counting lines."""
    if not title or reason.startswith("title too long"):
        return reason
    return f"{reason}: {title[:80]!r}"


def optional_text(value: object) -> str | None:
    return clean_text(value) or None


def parse_year(value: object) -> int | None:
    """An int, "2021", or any date string containing a four-digit year; anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None


def parse_authors(value: object) -> tuple[str, ...]:
    """A list of names, or one string: "A; B" (names may hold commas), else "A, B and C"."""
    if isinstance(value, list):
        names = [clean_text(v.get("name") if isinstance(v, dict) else v) for v in value]
        return tuple(n for n in names if n)
    if not isinstance(value, str):
        return ()
    text = clean_text(value)
    # arXiv puts affiliations in (possibly nested) parentheses, and those contain commas.
    while _PARENS.search(text):
        text = _PARENS.sub("", text)
    parts = text.split(";") if ";" in text else _AUTHOR_SEP.split(text)
    return tuple(n for n in (clean_text(p) for p in parts) if n)


def parse_categories(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        cats = [clean_text(v) for v in value]
    elif isinstance(value, str):
        cats = _CATEGORY_SEP.split(value)
    else:
        return ()
    return tuple(dict.fromkeys(c for c in cats if c))


def parse_url(value: object) -> str | None:
    url = clean_text(value)
    return url if url.startswith(("http://", "https://")) else None
