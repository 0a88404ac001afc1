"""Input-format readers: what each real-world file shape reads as, and how bad input is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.formats import FORMATS, FormatError, detect_format, read_file, read_paths
from ingest.formats.tabular import parse_authors, parse_categories, parse_year
from ingest.records import ReadResult

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
GOOD = b'{"title": "A Good Paper", "abstract": "An abstract that is long enough to keep."}\n'
HUGE = "A" * 10_000_000
TOO_LONG = "abstract too long (10,000,000 chars, limit 20,000): not an abstract?: 'Huge'"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def messages(result: ReadResult) -> list[str]:
    return [str(r) for r in result.rejections]


# --- the committed fixtures -----------------------------------------------------------------------

FIXTURE_CASES = [
    (
        "papers.jsonl",
        "jsonl",
        [1, 3, 4, 11],
        [
            "papers.jsonl:5: invalid JSON: the line ends in the middle of a record (truncated?)",
            "papers.jsonl:6: expected a JSON object, got an array",
            "papers.jsonl:7: expected a JSON object, got a string",
            "papers.jsonl:8: missing abstract (title-only entry): 'Title Only Paper'",
            "papers.jsonl:9: missing title",
            "papers.jsonl:10: abstract too short (10 chars, need >= 20): 'Short'",
        ],
    ),
    (
        "papers.json",
        "jsonl",
        [2, 7],
        [
            "papers.json:8: expected a JSON object, got a number",
            "papers.json:9: missing abstract (title-only entry): 'No Abstract Here'",
        ],
    ),
    (
        "papers.csv",
        "csv",
        [2, 3, 9],
        [
            "papers.csv:6: missing abstract (title-only entry): 'Missing Abstract'",
            "papers.csv:7: 8 fields but the header has 7 (unquoted delimiter in a field?)",
            'papers.csv:8: malformed CSV row: text after a closing quote (an unescaped " inside a quoted field?)',
        ],
    ),
    ("papers.tsv", "csv", [2], []),
    (
        "arxiv-snapshot.json",
        "arxiv",
        [1, 2, 5],
        [
            "arxiv-snapshot.json:3: missing abstract (title-only entry): 'No Abstract In Snapshot'",
            "arxiv-snapshot.json:4: missing arXiv 'id': 'No Id'",
        ],
    ),
    (
        "corpus.jsonl",
        "beir",
        [1, 2],
        [
            "corpus.jsonl:3: missing abstract (title-only entry): 'Empty Text'",
            "corpus.jsonl:4: missing '_id'",
        ],
    ),
    ("page.txt", "hf-pages", [2, 4], []),
]


@pytest.mark.parametrize(("name", "fmt", "record_lines", "rejected"), FIXTURE_CASES)
def test_fixture_detects_and_reads(name: str, fmt: str, record_lines: list[int], rejected: list[str]) -> None:
    path = FIXTURES / name
    assert detect_format(path) == fmt
    result = read_file(path)
    assert [r.line for r in result.records] == record_lines
    assert messages(result) == rejected
    assert {r.source for r in result.records} == {name}


def test_every_format_has_a_fixture() -> None:
    assert sorted({case[1] for case in FIXTURE_CASES}) == sorted(FORMATS)


ARXIV_TITLE = "Calculation of prompt diphoton production cross sections at Tevatron and LHC energies"


@pytest.mark.parametrize(
    ("name", "line", "fields"),
    [
        (
            "papers.jsonl",
            1,
            {
                "paper_id": "p1",
                "authors": ("Ada Lovelace", "Alan Turing"),
                "year": 2021,
                "url": "https://example.org/p1",
                "categories": ("cs.CL", "cs.LG"),
            },
        ),
        (
            "papers.jsonl",
            3,
            {
                "abstract": "Contrastive objectives produce sentence embeddings that transfer well.",
                "paper_id": "7",
                "authors": ("Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"),
                "year": 2019,
                "arxiv_id": "1906.00001",
                "categories": ("cs.CL", "cs.IR"),
            },
        ),
        # Wrong-typed optional fields become empty, never a crash or a bogus value.
        (
            "papers.jsonl",
            4,
            {"paper_id": "2101.00002", "year": None, "authors": (), "url": None, "categories": ()},
        ),
        ("papers.jsonl", 11, {"title": "Upper Case Keys", "paper_id": None}),
        ("papers.json", 7, {"paper_id": "a2", "title": "Second On One Line"}),
        (
            "papers.csv",
            2,
            {"authors": ("Ada Lovelace", "Alan Turing"), "year": 2020, "url": "https://example.org/c1"},
        ),
        (
            "papers.csv",
            3,
            {
                "abstract": "First line of the abstract and its second line, still one field.",
                "authors": ("Grace Hopper", "Barbara Liskov"),
                "year": None,
                "url": None,
            },
        ),
        ("papers.csv", 9, {"year": 2022, "categories": ("cs.CL", "cs.CV")}),
        (
            "papers.tsv",
            2,
            {"abstract": "An abstract in a tab separated file, with commas, kept whole.", "year": 2017},
        ),
        (
            "arxiv-snapshot.json",
            1,
            {
                "title": ARXIV_TITLE,
                "paper_id": "arxiv:0704.0001",
                "arxiv_id": "0704.0001",
                "url": "https://arxiv.org/abs/0704.0001",
                "year": 2007,  # versions[0].created, not update_date (2008)
                "authors": ("C. Bal\\'azs", "E. L. Berger", "P. M. Nadolsky", "C.-P. Yuan"),
                "categories": ("hep-ph",),
            },
        ),
        (
            "arxiv-snapshot.json",
            2,
            {"year": 2021, "authors": ("Jane Doe", "John Roe", "Ann Poe"), "categories": ("cs.CL", "cs.LG")},
        ),
        ("arxiv-snapshot.json", 5, {"year": None, "authors": ("Ada Lovelace",), "categories": ()}),
        ("corpus.jsonl", 1, {"paper_id": "doc1", "year": 2019, "url": "https://example.org/doc1"}),
        ("corpus.jsonl", 2, {"title": "2", "paper_id": "2", "url": None}),
        ("page.txt", 2, {"title": "Retrieval Augmented Generation for Paper Abstracts"}),
    ],
)
def test_record_fields(name: str, line: int, fields: dict[str, object]) -> None:
    (record,) = [r for r in read_file(FIXTURES / name).records if r.line == line]
    assert {k: getattr(record, k) for k in fields} == fields


def test_explicit_format_overrides_detection() -> None:
    # Read with the generic schema, a BEIR corpus has no "abstract" field at all.
    result = read_file(FIXTURES / "corpus.jsonl", "jsonl")
    assert result.records == []
    assert messages(result)[:2] == [
        "corpus.jsonl:1: missing abstract (title-only entry): 'BEIR Titled Document'",
        "corpus.jsonl:2: missing title",
    ]


# --- bad input built at test time -----------------------------------------------------------------

BAD_INPUT_CASES = [
    pytest.param(
        "bad.jsonl",
        GOOD + b'{"title": "Caf\xe9 Paper", "abstract": "Latin-1 bytes inside this record."}\n' + GOOD,
        [1, 3],
        ["bad.jsonl:2: invalid UTF-8 bytes"],
        id="jsonl-non-utf8-line",
    ),
    pytest.param(
        "bad.csv",
        b"title,abstract\n"
        b"First,An abstract that is long enough.\n"
        b'Second,"A quoted abstract whose second line\nhas a Latin-1 caf\xe9 in it."\n'
        b"Third,Another abstract that is long enough.\n",
        [2, 5],
        ["bad.csv:3: invalid UTF-8 bytes"],
        id="csv-non-utf8-in-multiline-row",
    ),
    pytest.param(
        "snapshot.json",
        b'{"id": "1", "title": "Caf\xe9", "abstract": "An abstract that is long enough.", "versions": []}\n'
        b'{"id": "2", "title": "Fine", "abstract": "An abstract that is long enough.", "versions": []}\n',
        [2],
        ["snapshot.json:1: invalid UTF-8 bytes"],
        id="arxiv-non-utf8-line",
    ),
    pytest.param(
        "corpus.jsonl",
        b'{"_id": "d1", "title": "Fine", "text": "A text that is long enough to keep."}\n'
        b'{"_id": "d2", "title": "Caf\xe9", "text": "A text that is long enough to keep."}\n',
        [1],
        ["corpus.jsonl:2: invalid UTF-8 bytes"],
        id="beir-non-utf8-line",
    ),
    pytest.param(
        "huge.jsonl",
        GOOD + b'{"title": "Huge", "abstract": "' + HUGE.encode() + b'"}\n' + GOOD,
        [1, 3],
        [f"huge.jsonl:2: {TOO_LONG}"],
        id="jsonl-10mb-abstract",
    ),
    pytest.param(
        "huge.csv",
        b"title,abstract\nHuge," + HUGE.encode() + b"\nSmall,An abstract that is long enough.\n",
        [3],
        [f"huge.csv:2: {TOO_LONG}"],
        id="csv-10mb-field",
    ),
    pytest.param(
        "crlf.jsonl",
        GOOD.replace(b"\n", b"\r\n") + b"\r\n" + GOOD.replace(b"\n", b"\r\n"),
        [1, 3],
        [],
        id="jsonl-crlf",
    ),
    pytest.param(
        "crlf.csv",
        b'title,abstract\r\nFirst,"Line one of the abstract\r\nand line two."\r\n\r\n'
        b"Second,Plain abstract long enough to pass\r\n",
        [2, 5],
        [],
        id="csv-crlf-multiline",
    ),
    pytest.param(
        "bom.csv",
        "\ufeffTitle,Abstract\nBOM Paper,An abstract after a byte order mark.\n".encode(),
        [2],
        [],
        id="csv-utf8-bom",
    ),
    pytest.param(
        "semicolon.csv",
        b"title;abstract;year\nEuro Export;An abstract, with commas, from a spreadsheet.;2020\n",
        [2],
        [],
        id="csv-semicolon-delimiter",
    ),
    pytest.param(
        "short-row.csv",
        b"title,abstract,year,url\nShort Row,An abstract whose row omits trailing columns.\n",
        [2],
        [],
        id="csv-row-with-fewer-fields",
    ),
    pytest.param(
        "unclosed.csv",
        b'title,abstract\nFine,An abstract that is long enough.\nOpen,"This quote never closes\nat all\n',
        [2],
        ["unclosed.csv:3: malformed CSV row: a quoted field is never closed"],
        id="csv-unclosed-quote",
    ),
    pytest.param(
        "cr.csv",
        b"title,abstract\nBare,An abstract with a bare\rcarriage return.\nFine,An abstract that is long enough.\n",
        [3],
        ["cr.csv:2: malformed CSV row: a bare carriage return inside an unquoted field"],
        id="csv-bare-carriage-return",
    ),
    pytest.param(
        "types.jsonl",
        b'["a", "b"]\nnull\n3.5\n'
        b'{"title": "T", "abstract": "An abstract that is long enough.", "year": [1]}\n'
        b'{"title": "Extra", "abstract": "An abstract that is long enough."}}\n',
        [4],
        [
            "types.jsonl:1: expected a JSON object, got an array",
            "types.jsonl:2: expected a JSON object, got null",
            "types.jsonl:3: expected a JSON object, got a number",
            "types.jsonl:5: invalid JSON at column 67: Extra data",
        ],
        id="jsonl-non-objects",
    ),
    pytest.param(
        "cut.json",
        b'[\n  {"title": "Kept", "abstract": "An abstract before the cut."},\n  {"title": "Cut", "abstr',
        [2],
        ["cut.json:3: invalid JSON: the file ends in the middle of this record (truncated?)"],
        id="json-array-truncated-mid-element",
    ),
    pytest.param(
        "garbled.json",
        b'[\n  {"title": "One", "abstract": "An abstract that is long enough."},\n'
        b'  {"title": "Two" "abstract": "An abstract that is long enough."},\n'
        b'  {"title": "Three", "abstract": "An abstract that is long enough."}\n]\n',
        [2],
        ["garbled.json:3: invalid JSON at line 3 column 19: Expecting ',' delimiter; rest of the array skipped"],
        id="json-array-syntax-error",
    ),
    pytest.param(
        "open.json",
        b'[\n  {"title": "One", "abstract": "An abstract that is long enough."},\n'
        b'  {"title": "Two", "abstract": "An abstract that is long enough."}\n',
        [2, 3],
        ["open.json:4: invalid JSON: array is not closed with ']' (file truncated?)"],
        id="json-array-not-closed",
    ),
    pytest.param(
        "nocomma.json",
        b'[\n  {"title": "One", "abstract": "An abstract that is long enough."}\n'
        b'  {"title": "Two", "abstract": "An abstract that is long enough."}\n]\n',
        [2],
        ["nocomma.json:3: invalid JSON: expected ',' or ']' here; rest of the array skipped"],
        id="json-array-missing-comma",
    ),
]


@pytest.mark.parametrize(("name", "data", "record_lines", "rejected"), BAD_INPUT_CASES)
def test_bad_records_are_rejected_and_the_rest_reads(
    tmp_path: Path, name: str, data: bytes, record_lines: list[int], rejected: list[str]
) -> None:
    result = read_file(write(tmp_path, name, data))
    assert [r.line for r in result.records] == record_lines
    assert messages(result) == rejected
    assert not any("\r" in r.title + r.abstract for r in result.records)


# --- whole-file problems --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "fmt", "message"),
    [
        ("empty.jsonl", b"", None, "empty.jsonl: file is empty"),
        ("blank.csv", b"\r\n  \n", None, "blank.csv: file is empty"),
        ("blank.txt", b"\n\n", "hf-pages", "blank.txt: file is empty"),
        (
            "blob.jsonl",
            b"\x00\x01\x02\xff" * 100,
            None,
            "blob.jsonl: binary file (NUL bytes), not a text corpus",
        ),
        (
            "blob.csv",
            b"title,abstract\n\x00\x00",
            "csv",
            "blob.csv: binary file (NUL bytes), not a text corpus",
        ),
        (
            "paper.pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            None,
            "paper.pdf: unknown format '.pdf', expected one of .txt, .jsonl, .json, .csv, .tsv; "
            "PDFs are not supported, export titles and abstracts as JSONL or CSV",
        ),
        (
            "README",
            b"hello\n",
            None,
            "README: unknown format '(no extension)', expected one of .txt, .jsonl, .json, .csv, .tsv",
        ),
        (
            "people.csv",
            b"name,text\nAda,Something\n",
            None,
            "people.csv: CSV header needs 'title' and 'abstract' columns (found: 'name', 'text')",
        ),
        (
            "quoted.csv",
            b'title,"abstract\n',
            None,
            "quoted.csv:1: header row: malformed CSV row: a quoted field is never closed",
        ),
        (
            "notes.jsonl",
            b"these are notes\nnot json at all\n",
            None,
            "notes.jsonl: not JSON Lines or a JSON array of objects (line 1: invalid JSON at column 1: "
            "Expecting value); expected one JSON object per line",
        ),
        (
            "latin1.jsonl",
            b'{"title": "Caf\xe9"}\n' * 12,
            None,
            "latin1.jsonl: not UTF-8 text (12 lines with invalid bytes)",
        ),
        (
            "x.jsonl",
            GOOD,
            "xml",
            "x.jsonl: unknown format 'xml'; choose one of hf-pages, jsonl, csv, arxiv, beir",
        ),
    ],
)
def test_whole_file_problems_raise_naming_the_file(
    tmp_path: Path, name: str, data: bytes, fmt: str | None, message: str
) -> None:
    with pytest.raises(FormatError) as excinfo:
        read_file(write(tmp_path, name, data), fmt)
    assert str(excinfo.value) == message


def test_explicit_wrong_format_is_a_whole_file_error() -> None:
    with pytest.raises(FormatError, match=r"^papers\.csv: not JSON Lines .*line 1: invalid JSON at column 1"):
        read_file(FIXTURES / "papers.csv", "jsonl")


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"^gone\.jsonl: cannot read \(No such file or directory\)$"):
        read_file(tmp_path / "gone.jsonl", "jsonl")


# --- detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("page.txt", b"Some Title\nSome abstract text.\n", "hf-pages"),
        ("a.csv", b"title,abstract\n", "csv"),
        ("a.TSV", b"title\tabstract\n", "csv"),
        ("a.jsonl", GOOD, "jsonl"),
        ("a.json", b"[" + GOOD + b"]", "jsonl"),
        ("corpus.jsonl", b'{"_id": "1", "title": "", "text": "t"}\n', "beir"),
        ("corpus.json", b'[\n {"_id": "1", "title": "", "text": "t"}\n]', "beir"),
        ("snap.json", b'{"id": "1", "abstract": "a", "versions": []}\n', "arxiv"),
        ("snap.jsonl", b'{"id": "1", "abstract": "a", "update_date": "2020-01-01"}\n', "arxiv"),
        # A plain id+abstract record is the generic schema, not arXiv.
        ("ids.jsonl", b'{"id": "1", "abstract": "a", "title": "t"}\n', "jsonl"),
        # The first line is broken; the keys of the next object decide.
        ("broken-first.jsonl", b'{"_id": "1", "te\n\n{"_id": "2", "text": "t"}\n', "beir"),
        ("all-broken.jsonl", b"{{{\n", "jsonl"),
    ],
)
def test_detect_format(tmp_path: Path, name: str, data: bytes, expected: str) -> None:
    assert detect_format(write(tmp_path, name, data)) == expected


def test_detect_format_rejects_empty_file_before_trusting_the_extension(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"^page\.txt: file is empty$"):
        detect_format(write(tmp_path, "page.txt", b"  \n"))


# --- many paths -----------------------------------------------------------------------------------


def test_read_paths_expands_directories_and_collects_file_errors(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    write(root, "b.jsonl", GOOD)
    write(root, "a/z.csv", b"title,abstract\nCSV Paper,An abstract that is long enough.\n")
    write(root, "a/empty.json", b"")
    write(root, "c.tsv", b"name\tabstract\nX\tY\n")
    write(root, "notes.md", b"# not a corpus\n")  # unknown extension: not picked up from a directory
    write(root, ".hidden.jsonl", GOOD)
    write(root, ".cache/d.jsonl", GOOD)
    extra = write(tmp_path, "extra.json", b"[" + GOOD + b"]")

    result, errors = read_paths([root, extra, root / "b.jsonl", tmp_path / "missing"])

    assert [(r.source, r.line) for r in result.records] == [("z.csv", 2), ("b.jsonl", 1), ("extra.json", 1)]
    assert errors == [
        f"{tmp_path / 'missing'}: no such file or directory",
        "empty.json: file is empty",
        "c.tsv: CSV header needs 'title' and 'abstract' columns (found: 'name', 'abstract')",
    ]


def test_read_paths_reports_explicit_unknown_file_and_empty_directory(tmp_path: Path) -> None:
    pdf = write(tmp_path, "paper.pdf", b"%PDF-1.7\n")
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    result, errors = read_paths([pdf, empty_dir])
    assert result.records == []
    assert [e.split(":")[0] for e in errors] == [str(empty_dir), "paper.pdf"]
    assert errors[0].endswith("no .txt, .jsonl, .json, .csv, .tsv files in this directory")


def test_read_paths_applies_explicit_format_and_rejects_unknown_one(tmp_path: Path) -> None:
    path = write(tmp_path, "corpus.jsonl", b'{"_id": "1", "title": "T", "text": "A text that is long enough."}\n')
    assert [r.paper_id for r in read_paths([path], "beir")[0].records] == ["1"]
    assert read_paths([path], "jsonl")[0].records == []
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        read_paths([path], "xml")


# --- field parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2021, 2021),
        (2021.0, 2021),
        ("2021", 2021),
        ("2021-05-03", 2021),
        ("Mon, 2 Apr 2007 19:18:42 GMT", 2007),
        ("abc", None),
        ("", None),
        (None, None),
        (True, None),
        ([2021], None),
        (12021, None),
        (99, None),
    ],
)
def test_parse_year(value: object, expected: int | None) -> None:
    assert parse_year(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A. Smith, B. Jones and C. Lee", ("A. Smith", "B. Jones", "C. Lee")),
        ("A. Smith, B. Jones, and C. Lee", ("A. Smith", "B. Jones", "C. Lee")),
        ("Smith, Alice; Jones, Bob", ("Smith, Alice", "Jones, Bob")),
        ("Alexander Anderson", ("Alexander Anderson",)),
        ("X (MIT, Cambridge), Y ((1) CMU)", ("X", "Y")),
        (["  Ada  Lovelace ", "", {"name": "Alan Turing"}, 7], ("Ada Lovelace", "Alan Turing", "7")),
        (42, ()),
        (None, ()),
    ],
)
def test_parse_authors(value: object, expected: tuple[str, ...]) -> None:
    assert parse_authors(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("cs.CL cs.LG", ("cs.CL", "cs.LG")),
        ("cs.CL, cs.LG;cs.CL", ("cs.CL", "cs.LG")),
        (["cs.AI", "", "cs.AI"], ("cs.AI",)),
        (5, ()),
        (None, ()),
    ],
)
def test_parse_categories(value: object, expected: tuple[str, ...]) -> None:
    assert parse_categories(value) == expected
