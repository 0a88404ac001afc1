"""Citation export (rag.export): the BibTeX parses back with the same library for every bundled paper, the CSL-JSON
validates against the CSL data schema, keys are stable and unique, and the `rag ask --format` outputs are what the
Python API gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # chromadb's dependency; no stubs installed
import pytest
from bibtexparser.entrypoint import parse_string
from bibtexparser.library import Library
from bibtexparser.middlewares import SeparateCoAuthors
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.dedup import dedup
from ingest.formats import read_paths
from rag.answer import Answer
from rag.export import (
    ExportedPaper,
    bibtex,
    bibtex_text,
    citation_key,
    citation_keys,
    csl_items,
    paper_bibtex,
    paper_csl_json,
)
from rag.markup import restore
from rag.types import Citation, Paper, Source
from tests.conftest import BUNDLED, ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "formats"


def _papers(path: Path) -> list[Paper]:
    read, errors = read_paths([path])
    assert errors == []
    return dedup(read.records)  # as ingest.pipeline does


def _stored(papers: list[Paper]) -> list[ExportedPaper]:
    """Each paper as the export sees it: from the metadata Chroma stores (authors joined, categories joined)."""
    return [ExportedPaper.from_metadata(p.paper_id, p.chroma_metadata(), p.abstract) for p in papers]


@pytest.fixture(scope="module")
def bundled() -> list[ExportedPaper]:
    papers = _stored(_papers(BUNDLED))
    assert len(papers) == 872
    return papers


@pytest.fixture(scope="module")
def with_metadata() -> list[ExportedPaper]:
    """The format fixtures: papers with authors, years, URLs, arXiv ids and categories (the bundled ones have none)."""
    papers = _stored(_papers(FIXTURES))
    assert sum(bool(p.authors) for p in papers) >= 5 and sum(bool(p.arxiv_id) for p in papers) >= 3
    return papers


def _parse(text: str) -> Library:
    library = parse_string(text, append_middleware=[SeparateCoAuthors()])
    assert library.failed_blocks == [], [b.error for b in library.failed_blocks]
    return library


def _field(entry: Any, name: str) -> Any:
    f = entry.fields_dict.get(name)
    return None if f is None else f.value


# --------------------------------------------------------------------------------------------------- BibTeX


@pytest.mark.parametrize("corpus", [pytest.param("bundled", marks=pytest.mark.slow), "with_metadata"])
def test_bibtex_round_trips_every_paper(corpus: str, request: pytest.FixtureRequest) -> None:
    papers: list[ExportedPaper] = request.getfixturevalue(corpus)
    library = _parse(bibtex(papers, abstracts=True))
    entries = library.entries
    keys = citation_keys(papers)
    assert [e.key for e in entries] == keys and len({k.lower() for k in keys}) == len(papers)
    for entry, paper in zip(entries, papers, strict=True):
        assert entry.entry_type == "misc"
        assert _field(entry, "title") == bibtex_text(paper.title)
        assert _field(entry, "abstract") == bibtex_text(paper.abstract or "")
        assert _field(entry, "author") == ([bibtex_text(a) for a in paper.authors] if paper.authors else None)
        assert _field(entry, "year") == (str(paper.year) if paper.year is not None else None)
        assert _field(entry, "eprint") == paper.arxiv_id
        assert _field(entry, "archivePrefix") == ("arXiv" if paper.arxiv_id else None)
        assert _field(entry, "url") == paper.url
        if not set("%&#{}\\") & set(paper.title):  # plain titles come back exactly as stored
            assert _field(entry, "title") == paper.title


def test_keys_are_readable(with_metadata: list[ExportedPaper]) -> None:
    keys = {p.paper_id: citation_key(p) for p in with_metadata}
    assert keys["arxiv:2105.00001"] == "doe2021attention"  # surname + year + first title word
    assert keys["arxiv:0704.0001"] == "balazs2007calculation"  # LaTeX accent folded: C. Bal\'azs
    assert keys["7"] == "hopper2019contrastive"
    assert keys["2101.00002"] == "2101.00002"  # no author: the paper id


@pytest.mark.slow  # a pass over the whole bundled corpus, twice
def test_keys_are_stable(bundled: list[ExportedPaper]) -> None:
    # Pinned: a key that changed between releases would break every document citing it.
    assert citation_key(bundled[0]) == "clustering-aware-negative-sampling-for-unsupervi-bf605d7f"
    # A fresh interpreter (another run, another hash seed) gives the same keys.
    code = (
        "from tests.test_export import _papers, _stored; from tests.conftest import BUNDLED;"
        "from rag.export import citation_keys; print('\\n'.join(citation_keys(_stored(_papers(BUNDLED)))))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, text=True, capture_output=True, check=True)
    assert res.stdout.split() == citation_keys(bundled)


def test_colliding_keys_get_suffixes_within_one_export() -> None:
    a = ExportedPaper("p1", "Attention Is All You Need", ("Jane Doe",), 2021)
    b = replace(a, paper_id="p2", abstract="another paper, same first author, year and title word")
    c = replace(a, paper_id="p3", authors=("Jane DOE",))  # BibTeX compares keys case-insensitively
    assert citation_keys([a, b, c]) == ["doe2021attention", "doe2021attentiona", "doe2021attentionb"]
    assert citation_keys([b]) == ["doe2021attention"]
    assert [e.key for e in _parse(bibtex([a, b, a, c])).entries] == citation_keys([a, b, c])  # a listed twice


SPECIAL = [
    ("100% & #1 of {BERT}", r"100\% \& \#1 of {BERT}"),  # bare specials escaped, balanced braces kept
    (r"Already 10\% \& escaped", r"Already 10\% \& escaped"),  # arXiv's LaTeX is not escaped twice
    ("LeC$^2$O-NeRF and Bal\\'azs", "LeC$^2$O-NeRF and Bal\\'azs"),  # LaTeX stays LaTeX
    ("Zürich, São Paulo, Łódź — “quoted” 東京", "Zürich, São Paulo, Łódź — “quoted” 東京"),  # Unicode as is
    ("a {b", r"a \textbraceleft{}b"),
    ("x}y", r"x\textbraceright{}y"),
    (r"\{ escaped }", r"\textbraceleft{} escaped \textbraceright{}"),
    ("ends with a backslash \\", r"ends with a backslash \textbackslash{}"),
    ("ends with a line break \\\\", "ends with a line break \\\\ "),  # found by the fuzz test below
    ('Say "hi"\n\n@misc{evil, title={x}}', 'Say "hi" @misc{evil, title={x}}'),  # one line, no second entry
]


@pytest.mark.parametrize(("title", "written"), SPECIAL)
def test_special_characters_survive(title: str, written: str) -> None:
    paper = ExportedPaper("p1", title, ("Jane Doe", "Barnes and Noble", "Zoë van der Berg"), 2020, abstract=title)
    assert bibtex_text(title) == written
    (entry,) = _parse(
        paper_bibtex(paper.paper_id, {"title": title, "authors": ", ".join(paper.authors)}, title)
    ).entries
    assert _field(entry, "title") == _field(entry, "abstract") == written
    assert _field(entry, "author") == ["Jane Doe", "{Barnes and Noble}", "Zoë van der Berg"]
    (item,) = json.loads(paper_csl_json("p1", {"title": title}, title))
    assert item["title"] == item["abstract"] == title  # CSL-JSON is plain text: the stored text unchanged


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab {}\\%&#$^_~\"@,=\n'é")), max_size=40))
def test_any_text_parses_back_as_one_entry(text: str) -> None:
    (entry,) = _parse(bibtex([ExportedPaper("p1", text, (text.strip() or "X",), 2020)])).entries
    assert _field(entry, "title") == bibtex_text(text)


def test_paper_bibtex_takes_a_paper_or_its_stored_metadata() -> None:
    paper = Paper("arxiv:2105.00001", "Attention", "An abstract.", authors=("Jane Doe",), year=2021,
                  arxiv_id="2105.00001", categories=("cs.CL",))  # fmt: skip
    text = paper_bibtex(paper)
    assert text == paper_bibtex(paper.paper_id, paper.chroma_metadata(), paper.abstract)
    (entry,) = _parse(text).entries
    assert (entry.key, _field(entry, "primaryClass"), _field(entry, "doi")) == (
        "doe2021attention",
        "cs.CL",
        "10.48550/arXiv.2105.00001",
    )
    assert _field(entry, "url") == "https://arxiv.org/abs/2105.00001" and _field(entry, "abstract") == "An abstract."


# --------------------------------------------------------------------------------------------------- CSL-JSON

# The CSL 1.0.2 data schema (citation-style-language/schema, schemas/input/csl-data.json, MIT): its item types,
# the variables an item may have (by kind), and the name and date shapes; additional properties are errors.
_CSL_TYPES = [
    "article",
    "article-journal",
    "article-magazine",
    "article-newspaper",
    "bill",
    "book",
    "broadcast",
    "chapter",
    "classic",
    "collection",
    "dataset",
    "document",
    "entry",
    "entry-dictionary",
    "entry-encyclopedia",
    "figure",
    "graphic",
    "hearing",
    "interview",
    "legal_case",
    "legislation",
    "manuscript",
    "map",
    "motion_picture",
    "musical_score",
    "pamphlet",
    "paper-conference",
    "patent",
    "performance",
    "periodical",
    "personal_communication",
    "post",
    "post-weblog",
    "regulation",
    "report",
    "review",
    "review-book",
    "software",
    "song",
    "speech",
    "standard",
    "thesis",
    "treaty",
    "webpage",
]
_CSL_NAMES = [
    "author",
    "chair",
    "collection-editor",
    "compiler",
    "composer",
    "container-author",
    "contributor",
    "curator",
    "director",
    "editor",
    "editorial-director",
    "executive-producer",
    "interviewer",
    "illustrator",
    "organizer",
    "original-author",
    "performer",
    "producer",
    "recipient",
    "reviewed-author",
    "translator",
]
_CSL_DATES = ["accessed", "available-date", "container", "event-date", "issued", "original-date", "submitted"]
_CSL_STRINGS = [
    "language",
    "journalAbbreviation",
    "shortTitle",
    "abstract",
    "annote",
    "archive",
    "archive_collection",
    "archive_location",
    "archive-place",
    "authority",
    "call-number",
    "citation-label",
    "collection-title",
    "container-title",
    "container-title-short",
    "dimensions",
    "division",
    "DOI",
    "event",
    "event-place",
    "genre",
    "ISAN",
    "ISBN",
    "ISCI",
    "ISMN",
    "ISRC",
    "ISSN",
    "ISWC",
    "jurisdiction",
    "keyword",
    "medium",
    "note",
    "original-publisher",
    "original-publisher-place",
    "original-title",
    "part-title",
    "PMCID",
    "PMID",
    "publisher",
    "publisher-place",
    "references",
    "reviewed-title",
    "scale",
    "section",
    "source",
    "status",
    "title",
    "title-short",
    "translated-title",
    "translated-title-short",
    "URL",
    "version",
    "year-suffix",
]
_CSL_NUMBERS = [
    "chapter-number",
    "citation-number",
    "collection-number",
    "edition",
    "first-reference-note-number",
    "issue",
    "locator",
    "number",
    "number-of-pages",
    "number-of-volumes",
    "page",
    "page-first",
    "part",
    "printing",
    "supplement",
    "volume",
]
_SCALAR = {"type": ["string", "number", "boolean"]}
CSL_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["type", "id"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": _CSL_TYPES},
            "id": {"type": ["string", "number"]},
            "categories": {"type": "array", "items": {"type": "string"}},
            "custom": {"type": "object"},
            **{k: {"type": "array", "items": {"$ref": "#/definitions/name"}} for k in _CSL_NAMES},
            **{k: {"$ref": "#/definitions/date"} for k in _CSL_DATES},
            **{k: {"type": "string"} for k in _CSL_STRINGS},
            **{k: {"type": ["string", "number"]} for k in _CSL_NUMBERS},
        },
    },
    "definitions": {
        "name": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                **{k: {"type": "string"} for k in ("family", "given", "dropping-particle", "non-dropping-particle")},
                **{k: {"type": "string"} for k in ("suffix", "literal")},
                **{k: _SCALAR for k in ("comma-suffix", "static-ordering", "parse-names")},
            },
        },
        "date": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "date-parts": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 2,
                    "items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": ["string", "number"]}},
                },
                **{k: _SCALAR for k in ("season", "circa")},
                **{k: {"type": "string"} for k in ("literal", "raw", "edtf")},
            },
        },
    },
}


@pytest.mark.parametrize("corpus", [pytest.param("bundled", marks=pytest.mark.slow), "with_metadata"])
def test_csl_json_validates_against_the_csl_schema(corpus: str, request: pytest.FixtureRequest) -> None:
    papers: list[ExportedPaper] = request.getfixturevalue(corpus)
    items = json.loads(json.dumps(csl_items(papers, abstracts=True)))
    jsonschema.validate(items, CSL_SCHEMA)
    assert [i["id"] for i in items] == citation_keys(papers)  # the same keys as the BibTeX of the same export
    for item, paper in zip(items, papers, strict=True):
        assert item["title"] == paper.title and item.get("abstract") == paper.abstract
        assert item.get("URL") == paper.url and len(item.get("author", [])) == len(paper.authors)
        assert item.get("issued") == ({"date-parts": [[paper.year]]} if paper.year is not None else None)
        assert item.get("number") == (f"arXiv:{paper.arxiv_id}" if paper.arxiv_id else None)


def test_csl_names_are_split_like_bibtex_names() -> None:
    authors = "C. Bal\\'azs, Ludwig van Beethoven, Barnes and Noble, Plato"
    (item,) = json.loads(paper_csl_json("p", {"title": "T", "authors": authors}))
    assert item["author"] == [
        {"family": "Bal\\'azs", "given": "C."},
        {"family": "Beethoven", "given": "Ludwig", "non-dropping-particle": "van"},
        {"literal": "Barnes and Noble"},
        {"family": "Plato"},
    ]
    jsonschema.validate([item], CSL_SCHEMA)


# --------------------------------------------------------------------------------------------------- Answer


def _answer(citations: list[Citation]) -> Answer:
    title = "Attention Is Still All You Need"
    meta: dict[str, str | int] = {"title": title, "authors": "Jane Doe, John Roe", "year": 2021}
    sources = [
        Source(1, "arxiv:2105.00001", title, "We revisit attention.", 0.9, "We revisit attention.",
               {**meta, "arxiv_id": "2105.00001", "url": "https://arxiv.org/abs/2105.00001"}),
        Source(2, "uncited", "Uncited 100% Paper", "Not cited.", 0.5, "Not cited.", {"title": "Uncited 100% Paper"}),
    ]  # fmt: skip
    return Answer("Is attention enough?", "Is attention enough?", "Yes [1].", citations, sources, "answered",
                  "extractive", "extractive mode")  # fmt: skip


def test_answer_exports_only_its_cited_papers() -> None:
    answer = _answer([Citation(1, "arxiv:2105.00001", "Attention Is Still All You Need", "We revisit attention.", 0.9)])
    (entry,) = _parse(answer.to_bibtex()).entries
    assert entry.key == "doe2021attention" and _field(entry, "author") == ["Jane Doe", "John Roe"]
    assert _field(entry, "abstract") is None and _field(_parse(answer.to_bibtex(abstracts=True)).entries[0], "abstract")
    (item,) = json.loads(answer.to_csl_json())
    assert item["id"] == "doe2021attention" and item["DOI"] == "10.48550/arXiv.2105.00001"
    md = answer.to_markdown()
    assert md.startswith("**Question:** Is attention enough?\n\nYes [1].\n\n**References**\n\n")
    assert "[1] [Attention Is Still All You Need](https://arxiv.org/abs/2105.00001) — “We revisit attention.”" in md
    assert "Uncited" not in answer.to_bibtex() + answer.to_csl_json() + md


def test_markdown_handed_out_never_renders_planted_links_or_html() -> None:
    planted = "See [click here](http://evil.example) ![x](http://evil.example/i.png) <img src=x onerror=alert(1)>"
    answer = replace(
        _answer([Citation(1, "arxiv:2105.00001", f"Attention {planted}", f"We revisit attention. {planted}", 0.9)]),
        question=f"Is attention enough? {planted}",
        text=f"Yes [1]. {planted}",
    )
    md = answer.to_markdown()
    assert "](http://evil" not in md and "<img" not in md  # nothing a Markdown renderer turns into a link or tag
    assert restore(md).count(planted) == 4  # and every one still reads as written
    assert "](https://arxiv.org/abs/2105.00001)" in md  # the paper's own link, which we build, stays a link


def test_an_answer_without_citations_exports_empty() -> None:
    answer = replace(_answer([]), outcome="refused", text="The indexed abstracts don't answer this.")
    assert answer.to_bibtex() == "" and json.loads(answer.to_csl_json()) == []
    assert _parse(answer.to_bibtex()).entries == []
    assert "**References**" not in answer.to_markdown() and "**Nearest papers**" in answer.to_markdown()


# --------------------------------------------------------------------------------------------------- CLI

PAPERS = [
    {"id": "2105.00001", "title": "Origami Attention for Protein Folding", "authors": ["Jane Doe", "C. Bal\\'azs"],
     "abstract": "We propose origami attention, which folds sequence representations like paper to model protein "
     "folding. Origami attention improves contact prediction by 12% on protein benchmarks.",
     "year": 2021, "arxiv_id": "2105.00001", "categories": ["q-bio.BM", "cs.LG"]},
    {"id": "other", "title": "Gradient Tempering for Stable Optimisation", "year": 2020,
     "abstract": "We introduce gradient tempering, which rescales gradients by a running temperature to stabilise "
     "optimisation of deep networks. Experiments on image classification show faster convergence."},
]  # fmt: skip


def _cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    # The model-free hash embedding: this checks the command line, not retrieval quality.
    env = {**os.environ, "RAG_EMBEDDING__PROVIDER": "hash", "RAG_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, text=True, capture_output=True, timeout=300, check=False
    )


@pytest.mark.slow  # eight CLI processes, ~8 s each
def test_cli_ask_formats(tmp_path: Path) -> None:
    corpus = tmp_path / "papers.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in PAPERS))
    data = tmp_path / "data"
    assert _cli(["ingest", str(corpus), "-q"], data).returncode == 0
    question = "What is origami attention for protein folding?"
    as_json = _cli(["ask", question, "--format", "json"], data)
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["citations"][0]["paper_id"] == "2105.00001", answer["text"]

    bib = _cli(["ask", question, "--format", "bibtex"], data)
    assert bib.returncode == 0, bib.stderr
    (entry,) = _parse(bib.stdout).entries
    assert entry.key == "doe2021origami" and _field(entry, "eprint") == "2105.00001"
    assert _field(entry, "author") == ["Jane Doe", "C. Bal\\'azs"]

    csl = json.loads(_cli(["ask", question, "--format", "csl"], data).stdout)
    assert [i["id"] for i in csl] == ["doe2021origami"]
    jsonschema.validate(csl, CSL_SCHEMA)
    md = _cli(["ask", question, "--format", "markdown"], data).stdout
    assert md.startswith(f"**Question:** {question}") and "(https://arxiv.org/abs/2105.00001)" in md
    again = json.loads(_cli(["ask", question, "--json"], data).stdout)  # --json is --format json
    assert {**again, "timings_ms": {}} == {**answer, "timings_ms": {}}

    refused = _cli(["ask", "Who won the 2018 FIFA World Cup?", "--format", "bibtex"], data)
    assert refused.returncode == 0 and refused.stdout == "" and "cites no papers" in refused.stderr
    both = _cli(["ask", question, "--json", "--format", "bibtex"], data)
    assert both.returncode == 2 and "--json means --format json" in both.stdout  # under --json, errors are JSON
