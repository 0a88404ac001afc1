"""Citation export: the papers an answer cites (or one paper) as BibTeX, CSL-JSON and Markdown. Pure: text in, text out.

>>> print(paper_bibtex("arxiv:2105.00001", {"title": "Attention Is Still All You Need", "authors": "Jane Doe",
...                                         "year": 2021, "arxiv_id": "2105.00001"}))
@misc{doe2021attention,
        title = {Attention Is Still All You Need},
        author = {Jane Doe},
        year = {2021},
        ...

BibTeX is built and written by bibtexparser 2 (entries, fields, enclosing, and it parses our output back in the tests);
CSL-JSON items follow the CSL 1.0.2 data schema and are written with ``json``. Stored titles and abstracts are "plain
text with some LaTeX in it" (arXiv's ``10\\%``, ``$^2$``, ``\\'a``; scraped pages' bare ``%`` and ``&``), so BibTeX
values keep LaTeX as LaTeX and escape only what would break the file or the LaTeX run (see :func:`bibtex_text`);
CSL-JSON, which is read as plain text, carries the stored text unchanged.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from bibtexparser.entrypoint import write_string
from bibtexparser.library import Library
from bibtexparser.middlewares.names import InvalidNameError, parse_single_name_into_parts
from bibtexparser.model import Entry, Field

from rag.markup import inert_markdown
from rag.types import Citation, Paper, Source

__all__ = [
    "ExportedPaper",
    "answer_markdown",
    "bibtex",
    "bibtex_text",
    "citation_key",
    "citation_keys",
    "cited_papers",
    "csl_items",
    "csl_json",
    "paper_bibtex",
    "paper_csl_json",
    "paper_url",
]

ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_VERSION = re.compile(r"v\d+$")
_BARE_SPECIAL = re.compile(r"(?<!\\)([%&#])")  # % starts a comment, & and # are errors in LaTeX text
_SPACES = re.compile(r"\s+")
_AND = re.compile(r"\band\b", re.IGNORECASE)
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]+")
# Google Scholar's key skips these as the title word ("the" in "The Pile" says nothing about the paper).
_STOPWORDS = frozenset(
    {"a", "an", "the", "on", "of", "in", "for", "to", "and", "with", "from", "towards", "toward", "via", "is"}
    | {"are", "do", "does", "can", "how", "what", "why"}
)


@dataclass(frozen=True)
class ExportedPaper:
    """What an export says about one paper, read from its stored metadata (``rag.types.Paper.chroma_metadata``)."""

    paper_id: str
    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    url: str | None = None
    arxiv_id: str | None = None
    categories: tuple[str, ...] = ()
    abstract: str | None = None

    @classmethod
    def of(cls, paper: Paper, abstract: str | None = None) -> ExportedPaper:
        """``paper`` as exported: only an http(s) URL (or the arXiv one) and a well-formed arXiv id are kept."""
        arxiv = (paper.arxiv_id or "").strip()
        return cls(
            paper_id=paper.paper_id,
            title=paper.title,
            authors=paper.authors,
            year=paper.year,
            url=paper_url({"url": paper.url, "arxiv_id": arxiv}),
            arxiv_id=arxiv if ARXIV_ID.match(arxiv) else None,
            categories=paper.categories,
            abstract=abstract or None,
        )

    @classmethod
    def from_metadata(cls, paper_id: str, metadata: Mapping[str, Any], abstract: str | None = None) -> ExportedPaper:
        """From a chunk's stored metadata, read as ``rag.types.Paper.from_metadata`` reads it."""
        return cls.of(Paper.from_metadata({**metadata, "paper_id": paper_id}, abstract or ""), abstract)

    @property
    def arxiv_doi(self) -> str | None:
        # arXiv registers a DataCite DOI for every paper, old ones included.
        return f"10.48550/arXiv.{_VERSION.sub('', self.arxiv_id)}" if self.arxiv_id else None


def paper_url(metadata: Mapping[str, Any]) -> str | None:
    """An http(s) URL for the paper (its ``url``, else its arXiv id), or None. Other schemes are never linked."""
    url = str(metadata.get("url") or "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc and not any(c.isspace() for c in url):
            return url
    arxiv = str(metadata.get("arxiv_id") or "").strip()
    if arxiv and ARXIV_ID.match(arxiv):
        return f"https://arxiv.org/abs/{arxiv}"
    return None


def cited_papers(citations: Sequence[Citation], sources: Sequence[Source]) -> list[ExportedPaper]:
    """The cited papers in [n] order, with the metadata and abstract of the source each citation points to."""
    by_id = {s.paper_id: s for s in sources}
    out: list[ExportedPaper] = []
    for c in citations:
        src = by_id.get(c.paper_id)
        meta: dict[str, Any] = {"title": c.title, **(src.metadata if src else {})}
        out.append(ExportedPaper.from_metadata(c.paper_id, meta, src.abstract if src else None))
    return out


# --------------------------------------------------------------------------------------------------- keys


def _ascii_word(text: str) -> str:
    """Lowercase ASCII letters and digits only: "Balázs" -> "balazs", "Bal\\'azs" -> "balazs", "²" -> "2"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _surname(name: str) -> str:
    try:
        parts = parse_single_name_into_parts(name, strict=False)
    except InvalidNameError:
        return _ascii_word(name.split()[-1]) if name.split() else ""
    return _ascii_word("".join(parts.last)) if parts.last else ""


def citation_key(paper: ExportedPaper) -> str:
    """Google Scholar's shape, first author's surname + year + first title word ("doe2021attention"), when the
    first author is known; else a slug of the paper id (stable: ids are stable across runs). The same paper gets
    the same key in every export; :func:`citation_keys` suffixes collisions within one export."""
    surname = _surname(paper.authors[0]) if paper.authors else ""
    if surname:
        words = (_ascii_word(w) for w in paper.title.split())
        word = next((w for w in words if w and w not in _STOPWORDS), "")
        return f"{surname}{paper.year or ''}{word}"
    return _KEY_UNSAFE.sub("-", paper.paper_id).strip("-.:") or "paper"


def citation_keys(papers: Sequence[ExportedPaper]) -> list[str]:
    """One key per paper, unique within this export (case-insensitively, as BibTeX compares keys): the second
    "doe2021attention" becomes "doe2021attentiona", the next "...b"."""
    seen: set[str] = set()
    keys: list[str] = []
    for paper in papers:
        base = key = citation_key(paper)
        n = 0
        while key.lower() in seen:
            n += 1
            key = base + _suffix(n)
        seen.add(key.lower())
        keys.append(key)
    return keys


def _suffix(n: int) -> str:
    letters = ""
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(ord("a") + r) + letters
    return letters


def _unique(papers: Iterable[ExportedPaper]) -> list[ExportedPaper]:
    return list({p.paper_id: p for p in reversed(list(papers))}.values())[::-1]  # first occurrence, in order


# --------------------------------------------------------------------------------------------------- BibTeX


def bibtex_text(text: str) -> str:
    """``text`` as a BibTeX field value: one line; LaTeX kept as LaTeX (``$^2$``, ``\\'a``, ``10\\%``); bare % & #
    escaped; escaped or unmatched braces and a trailing backslash written as LaTeX commands, because BibTeX counts
    every brace (escaped ones too) while bibtexparser skips escaped ones: only balanced plain braces mean the same
    to both."""
    text = _SPACES.sub(" ", text).strip()
    text = _BARE_SPECIAL.sub(r"\\\1", text)
    text = text.replace("\\{", "\\textbraceleft{}").replace("\\}", "\\textbraceright{}")
    # The commands just written add balanced "{}" pairs; balance the user's braces around them.
    out: list[str] = []
    open_at: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if text.startswith("{}", i):
            out.append("{}")
            i += 2
            continue
        if ch == "{":
            open_at.append(len(out))
            out.append(ch)
        elif ch == "}" and open_at:
            open_at.pop()
            out.append(ch)
        elif ch == "}":
            out.append("\\textbraceright{}")
        else:
            out.append(ch)
        i += 1
    for pos in open_at:
        out[pos] = "\\textbraceleft{}"
    value = "".join(out)
    # A trailing backslash would escape the closing brace (to bibtexparser): a lone one is a literal backslash, a
    # pair a LaTeX line break that a space keeps apart from the brace.
    if (len(value) - len(value.rstrip("\\"))) % 2:
        value = value[:-1] + "\\textbackslash{}"
    elif value.endswith("\\"):
        value += " "
    return value


def _bibtex_name(name: str) -> str:
    """One author for an ``and``-separated author field: a name that itself contains "and" or a comma is braced,
    so it stays one (corporate) name instead of splitting into two or reading as "Last, First"."""
    value = bibtex_text(name)
    return f"{{{value}}}" if _AND.search(value) or "," in value else value


def _entry(paper: ExportedPaper, key: str, abstracts: bool) -> Entry:
    # @misc: we never know a journal, and @article without one is an incomplete entry to BibTeX; @misc with
    # eprint/archivePrefix is also what arXiv's own "Export BibTeX Citation" gives.
    fields = [Field("title", bibtex_text(paper.title))]
    if paper.authors:
        fields.append(Field("author", " and ".join(_bibtex_name(a) for a in paper.authors)))
    if paper.year is not None:
        fields.append(Field("year", str(paper.year)))
    if paper.arxiv_id:
        fields += [Field("eprint", paper.arxiv_id), Field("archivePrefix", "arXiv")]
        if paper.categories:
            fields.append(Field("primaryClass", bibtex_text(paper.categories[0])))
        fields.append(Field("doi", paper.arxiv_doi))
    if paper.url:
        fields.append(Field("url", bibtex_text(paper.url)))
    if abstracts and paper.abstract:
        fields.append(Field("abstract", bibtex_text(paper.abstract)))
    return Entry("misc", key, fields)


def bibtex(papers: Iterable[ExportedPaper], *, abstracts: bool = False) -> str:
    """A .bib file with one @misc entry per paper (each paper once, in the order given); "" for no papers."""
    unique = _unique(papers)
    library = Library()
    for paper, key in zip(unique, citation_keys(unique), strict=True):
        library.add(_entry(paper, key, abstracts))
    return write_string(library) if unique else ""


def paper_bibtex(paper: Paper | str, metadata: Mapping[str, Any] | None = None, abstract: str | None = None) -> str:
    """One paper as BibTeX, abstract included (what ``GET /v1/papers/{id}?format=bibtex`` returns): from a
    ``rag.types.Paper`` (``paper_bibtex(assistant.paper(pid))``) or from a paper id and its stored metadata
    (``paper_bibtex(pid, source.metadata, source.abstract)``)."""
    return bibtex([_one(paper, metadata, abstract)], abstracts=True)


def _one(paper: Paper | str, metadata: Mapping[str, Any] | None, abstract: str | None) -> ExportedPaper:
    if isinstance(paper, Paper):
        return ExportedPaper.of(paper, paper.abstract)
    return ExportedPaper.from_metadata(paper, metadata or {}, abstract)


# --------------------------------------------------------------------------------------------------- CSL-JSON


def _csl_name(name: str) -> dict[str, str]:
    if _AND.search(name) or "," in name:
        return {"literal": name}
    try:
        parts = parse_single_name_into_parts(name, strict=False)
    except InvalidNameError:
        return {"literal": name}
    out = {"family": " ".join(parts.last), "given": " ".join(parts.first)}
    if parts.von:
        out["non-dropping-particle"] = " ".join(parts.von)
    if parts.jr:
        out["suffix"] = " ".join(parts.jr)
    return {k: v for k, v in out.items() if v} or {"literal": name}


def csl_items(papers: Iterable[ExportedPaper], *, abstracts: bool = False) -> list[dict[str, Any]]:
    """CSL-JSON items (CSL 1.0.2 data schema), ids equal to the BibTeX keys of the same export."""
    unique = _unique(papers)
    items: list[dict[str, Any]] = []
    for paper, key in zip(unique, citation_keys(unique), strict=True):
        # "article": CSL's type for a preprint or working paper not published in a journal.
        item: dict[str, Any] = {"id": key, "type": "article", "title": paper.title}
        if paper.authors:
            item["author"] = [_csl_name(a) for a in paper.authors]
        if paper.year is not None:
            item["issued"] = {"date-parts": [[paper.year]]}
        if paper.arxiv_id:
            # How Zotero writes an arXiv preprint: number "arXiv:<id>", publisher arXiv, the arXiv DOI.
            item |= {"number": f"arXiv:{paper.arxiv_id}", "publisher": "arXiv", "DOI": paper.arxiv_doi}
        if paper.url:
            item["URL"] = paper.url
        if paper.categories:
            item["keyword"] = ", ".join(paper.categories)
        if abstracts and paper.abstract:
            item["abstract"] = paper.abstract
        items.append(item)
    return items


def csl_json(papers: Iterable[ExportedPaper], *, abstracts: bool = False, indent: int | None = 2) -> str:
    """:func:`csl_items` as a CSL-JSON document (a JSON array; "[]" for no papers)."""
    return json.dumps(csl_items(papers, abstracts=abstracts), indent=indent, ensure_ascii=False)


def paper_csl_json(paper: Paper | str, metadata: Mapping[str, Any] | None = None, abstract: str | None = None) -> str:
    """One paper as CSL-JSON (an array of one item, abstract included); arguments as for :func:`paper_bibtex`."""
    return csl_json([_one(paper, metadata, abstract)], abstracts=True)


# --------------------------------------------------------------------------------------------------- Markdown


class AnswerLike(Protocol):
    """What the Markdown export reads of a ``rag.answer.Answer`` (named here: rag.answer imports this module)."""

    @property
    def question(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def missing(self) -> str: ...
    @property
    def refused(self) -> bool: ...
    @property
    def citations(self) -> list[Citation]: ...
    @property
    def sources(self) -> list[Source]: ...


def answer_markdown(answer: AnswerLike, *, question: bool = True) -> str:
    """The question (unless ``question=False``: a chat reply), the answer and its numbered references (linked when
    a URL is known), as Markdown."""
    # Everything but the links built here (http(s) only) is text from the user, the corpus or an LLM: inert.
    lines = [f"**Question:** {inert_markdown(answer.question)}", ""] if question else []
    lines.append(inert_markdown(answer.text.strip()))
    if answer.outcome == "partial":
        lines += ["", f"_Partly answered: the abstracts do not give {inert_markdown(answer.missing)}._"]
    by_id = {s.paper_id: s for s in answer.sources}
    if answer.citations:
        lines += ["", "**References**", ""]
        for c in answer.citations:
            src = by_id.get(c.paper_id)
            link = paper_url(src.metadata) if src else None
            title = f"[{inert_markdown(c.title)}]({link})" if link else inert_markdown(c.title)
            quote = f" — “{inert_markdown(c.quote)}”" if c.quote else ""
            lines.append(f"[{c.n}] {title}{quote}")
    elif answer.refused and answer.sources:
        lines += ["", "**Nearest papers**", ""] + [f"- {inert_markdown(s.title)}" for s in answer.sources[:5]]
    return "\n".join(lines).strip() + "\n"
