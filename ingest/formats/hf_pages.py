"""Reader for the bundled corpus: scraped paper-listing pages where non-empty lines alternate title, abstract.

Page noise seen in the real files: header lines ("Get trending papers in your email inbox!", "new",
"Mar 12", "byAK and the research community") and the word "Subscribe" glued to the first title.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.formats.common import check_record, clean_text, read_text
from ingest.records import ReadResult, Record, Rejection

__all__ = ["is_header_line", "read_hf_pages"]

_HEADER_LINES = frozenset(
    {
        "get trending papers in your email inbox once a day!",
        "get trending papers in your email inbox!",
        "new",
        "subscribe",
        "byak and the research community",
    }
)
# "Mar 12", "Sep 3, 2024": the listing's date line.
_DATE_LINE = re.compile(r"^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}(, \d{4})?$", re.I)
# "SubscribeClustering-Aware ...": the page's button text glued to the first title.
_GLUED_SUBSCRIBE = re.compile(r"^Subscribe(?=[A-Z0-9\[(\"'])")


def is_header_line(line: str) -> bool:
    low = line.strip().lower()
    return low in _HEADER_LINES or bool(_DATE_LINE.match(low))


def read_hf_pages(path: Path) -> ReadResult:
    """Parse one page. Titles are short, abstracts long: a title line followed by another short line means the
    abstract is missing (a title-only entry); that entry is rejected and parsing re-synchronises."""
    text, bad_lines = read_text(path)
    bad = set(bad_lines)
    lines = [(n, clean_text(raw)) for n, raw in enumerate(text.split("\n"), start=1) if raw.strip()]
    lines = [(n, s) for n, s in lines if not is_header_line(s)]
    result = ReadResult()
    source = path.name
    i = 0
    while i < len(lines):
        n, title = lines[i]
        title = _GLUED_SUBSCRIBE.sub("", title)
        if i + 1 >= len(lines) or (_looks_like_title(lines[i + 1][1]) and not _looks_like_abstract(title)):
            if _looks_like_abstract(title):
                result.rejections.append(Rejection(source, n, "abstract without a title line before it"))
            else:
                result.rejections.append(Rejection(source, n, f"missing abstract (title-only entry): {title!r}"))
            i += 1
            continue
        m, abstract = lines[i + 1]
        i += 2
        if n in bad or m in bad:
            result.rejections.append(Rejection(source, n if n in bad else m, "invalid UTF-8 bytes"))
            continue
        reason = check_record(title, abstract)
        if reason:
            result.rejections.append(Rejection(source, n, reason))
            continue
        result.records.append(Record(title=title, abstract=abstract, source=source, line=n))
    return result


def _looks_like_title(line: str) -> bool:
    # Titles here are 16-174 chars with no sentence break; abstracts 406+ chars of several sentences.
    return len(line) <= 300 and ". " not in line.rstrip(".")


def _looks_like_abstract(line: str) -> bool:
    return len(line) > 300 or line.count(". ") >= 2
