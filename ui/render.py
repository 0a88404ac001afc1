"""Safe HTML for the chat and the evidence panel (pure: strings in, strings out, no Gradio, no I/O).

Every piece of text that reaches the page (abstracts, titles, metadata, questions, answers, upload messages) goes
through :func:`esc` before any markup of ours is added around it. ``esc`` does what ``html.escape(text, quote=True)``
does and, in the same pass, writes numeric entities for the characters Markdown, templates and the Chatbot's
renderer react to (``[ ] ( ) * _ ` ~ ! | # $ { } \\``), so
escaped text is inert as HTML, as Markdown and as a template. Citation markers are recognised in the raw text and
replaced by badges built from their numbers only; links are emitted only for http(s) URLs. Rendered fragments
contain no newline, so a Markdown renderer treats each one as a single raw HTML block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from rag import export
from rag.answer import Answer
from rag.citations import MARKER_GROUP, parse_markers
from rag.types import Citation, Source

__all__ = [
    "answer_html",
    "answer_markdown",
    "error_html",
    "esc",
    "evidence_html",
    "ingest_html",
    "mode_html",
    "notice_html",
    "paper_link",
    "pending_html",
    "query_html",
    "question_html",
    "status_html",
    "text_html",
]

# One pass over the text: html.escape's & < > " ' and what Markdown (links, emphasis, code, headings, tables),
# Handlebars/JS templates (${...}, {{...}}) and backslash escapes could act on.
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
    | {c: f"&#{ord(c)};" for c in "[]()*_`~!|#${}\\"}
)
# A citation group, as in rag.citations: [1], [1, 2], [1-3], [1; 4]; at most 3 digits; not a Markdown link.
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_BULLET = re.compile(r"^\s*[-*•]\s+")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+")
_HEADING = re.compile(r"^\s*#{1,6}\s+")
_EMPTY_EVIDENCE = (
    '<div class="ev-panel ev-empty"><div class="ev-head">Evidence</div><p>Each paper an answer cites appears here: '
    "its title, where to find it, and the sentence of its abstract that supports the answer, highlighted.</p></div>"
)
_ABSTRACT_PREVIEW = 320
_MAX_REJECTED = 50


def esc(text: object) -> str:
    """``text`` as inert HTML text: escaped for HTML, Markdown and templates; newlines become spaces."""
    s = str(text).translate(_ESCAPES)
    return " ".join(s.split("\n")) if "\n" in s else s


def paper_link(metadata: dict[str, str | int]) -> str | None:
    """An http(s) URL for the paper (its ``url``, else its arXiv id), or None. Other schemes are never linked."""
    return export.paper_url(metadata)


# --------------------------------------------------------------------------------------------------- answer text


def _badges(numbers: Sequence[int], titles: dict[int, str]) -> str:
    out = []
    for n in dict.fromkeys(numbers):
        tip = f' title="{esc(titles[n])}"' if n in titles else ""
        out.append(f'<sup class="cite"{tip}>{n}</sup>')
    return "".join(out)


def _inline(text: str, titles: dict[int, str]) -> str:
    """One line: escaped text, **bold** as <strong>, citation groups as badges (markup only from parsed numbers)."""
    out: list[str] = []
    for i, part in enumerate(_BOLD.split(text)):
        pieces: list[str] = []
        cursor = 0
        for m in MARKER_GROUP.finditer(part):
            pieces.append(esc(part[cursor : m.start()]))
            pieces.append(_badges(parse_markers(m.group(0)), titles))
            cursor = m.end()
        pieces.append(esc(part[cursor:]))
        rendered = "".join(pieces)
        out.append(f"<strong>{rendered}</strong>" if i % 2 else rendered)
    return "".join(out)


def text_html(text: str, titles: dict[int, str] | None = None) -> str:
    """Answer text (as the assistant or an LLM writes it: paragraphs, "- " and "1. " lists, "#" headings, **bold**,
    [n]) as safe HTML. Any other Markdown is shown as the characters it is."""
    titles = titles or {}
    blocks: list[str] = []
    para: list[str] = []
    items: list[str] = []
    kind = ""  # "ul" or "ol" while a list is open

    def flush() -> None:
        nonlocal kind
        if para:
            blocks.append(f"<p>{'<br>'.join(para)}</p>")
            para.clear()
        if items:
            blocks.append(f"<{kind}>{''.join(f'<li>{i}</li>' for i in items)}</{kind}>")
            items.clear()
        kind = ""

    for line in text.split("\n"):
        item = _BULLET.match(line) or _NUMBERED.match(line)
        heading = _HEADING.match(line)
        if not line.strip():
            flush()
        elif item:
            new_kind = "ul" if _BULLET.match(line) else "ol"
            if para or kind != new_kind:
                flush()
            kind = new_kind
            items.append(_inline(line[item.end() :].strip(), titles))
        elif heading:
            flush()
            blocks.append(f"<p><strong>{_inline(line[heading.end() :].strip(), titles)}</strong></p>")
        else:
            if items:
                flush()
            para.append(_inline(line.strip(), titles))
    flush()
    return "".join(blocks)


def question_html(question: str) -> str:
    """The user's question as shown in their chat bubble."""
    return f'<div class="q">{esc(question.strip())}</div>'


def pending_html(partial: str = "", sources: Sequence[Source] = ()) -> str:
    """The assistant's bubble while it works: a searching line, then the streamed text so far."""
    if not partial.strip():
        return '<div class="ans pending"><span class="spinner"></span>Searching the abstracts…</div>'
    titles = {s.n: s.title for s in sources}
    return f'<div class="ans streaming">{text_html(partial, titles)}</div>'


def answer_html(answer: Answer) -> str:
    """The assistant's bubble for a finished answer (or a refusal, shown as such)."""
    flags = ""
    if answer.flags:  # on a refusal too: e.g. a rerank stage that failed and fell back
        flags = '<ul class="ans-flags">' + "".join(f"<li>{esc(f)}</li>" for f in answer.flags) + "</ul>"
    if answer.refused:
        head = '<div class="refusal-head">Not answered from the indexed abstracts</div>'
        return f'<div class="ans refusal">{head}{text_html(answer.text)}{flags}</div>'
    titles = {c.n: c.title for c in answer.citations}
    if answer.outcome == "partial":
        # Found the paper, not the detail: neither a full answer nor a refusal, and it says which detail is missing.
        head = f'<div class="partial-head">Partly answered: the abstracts do not give {esc(answer.missing)}</div>'
        return f'<div class="ans partial">{head}{text_html(answer.text, titles)}{flags}</div>'
    return f'<div class="ans answered">{text_html(answer.text, titles)}{flags}</div>'


def error_html(message: str) -> str:
    """An assistant bubble for a request that failed (e.g. the LLM is unreachable)."""
    return f'<div class="ans error"><div class="error-head">Could not answer</div><p>{esc(message)}</p></div>'


def query_html(answer: Answer | None) -> str:
    """The small line under the chat naming the standalone query that was searched."""
    if answer is None:
        return ""
    note = " (your follow-up, made standalone)" if answer.query != answer.question else ""
    return f'<div class="searched">Searched for <q>{esc(answer.query)}</q>{esc(note)}</div>'


def notice_html(message: str, kind: str = "error") -> str:
    """A one-line message under the input box ('' for none). ``kind``: error, warn or ok."""
    if not message:
        return ""
    kind = kind if kind in ("error", "warn", "ok") else "error"
    return f'<div class="notice notice-{kind}" role="status">{esc(message)}</div>'


def mode_html(note: str) -> str:
    """The visible line saying which mode answers (extractive or which LLM)."""
    llm = not note.startswith("extractive")
    label, _, rest = note.partition(" — ")
    hint = f'<span class="mode-hint"> — {esc(rest)}</span>' if rest else ""
    return (
        f'<div class="mode-line"><span class="mode-dot {"llm" if llm else "extractive"}"></span>'
        f"<span>{esc(label)}</span>{hint}</div>"
    )


# --------------------------------------------------------------------------------------------------- evidence


def _highlight(abstract: str, quote: str) -> tuple[str, bool]:
    """The abstract with ``quote`` wrapped in <mark> (each part escaped separately); False if it was not found."""
    if not quote.strip():
        return esc(abstract), False
    start, end = abstract.find(quote), -1
    if start >= 0:
        end = start + len(quote)
    else:  # the sentence splitter may have normalised whitespace
        pattern = r"\s+".join(re.escape(w) for w in quote.split())
        m = re.search(pattern, abstract)
        if m is None:
            return esc(abstract), False
        start, end = m.start(), m.end()
    return f"{esc(abstract[:start])}<mark>{esc(abstract[start:end])}</mark>{esc(abstract[end:])}", True


def _meta(source: Source, extra: str = "") -> str:
    parts: list[str] = []
    year = source.metadata.get("year")
    if year:
        parts.append(f'<span class="ev-year">{esc(year)}</span>')
    authors = [a.strip() for a in str(source.metadata.get("authors") or "").split(",") if a.strip()]
    if authors:
        shown = ", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "")
        parts.append(f'<span class="ev-authors">{esc(shown)}</span>')
    link = paper_link(source.metadata)
    if link:
        host = urlsplit(link).netloc.removeprefix("www.")
        attrs = f'class="ev-link" href="{esc(link)}" target="_blank" rel="noopener noreferrer nofollow"'
        parts.append(f"<a {attrs}>{esc(host)} ↗</a>")
    if extra:
        parts.append(extra)
    return f'<div class="ev-meta">{" · ".join(parts)}</div>' if parts else ""


def _support(citation: Citation) -> str:
    pct = max(0, min(100, round(citation.score * 100)))
    verdict = "supported" if citation.supported else "weak support"
    cls = "ok" if citation.supported else "weak"
    return (
        f'<span class="ev-support {cls}" title="How well this abstract backs the cited sentence (0–1)">'
        f'<span class="bar"><span style="width:{pct}%"></span></span>support {citation.score:.2f} · {verdict}</span>'
    )


def _cited_card(citation: Citation, source: Source) -> str:
    body, found = _highlight(source.abstract or source.best_chunk, citation.quote)
    quote = "" if found or not citation.quote else f'<blockquote class="ev-quote">{esc(citation.quote)}</blockquote>'
    return (
        f'<article class="ev-card cited" id="ev-{citation.n}" data-n="{citation.n}" '
        f'data-paper-id="{esc(citation.paper_id)}">'
        f'<div class="ev-top"><sup class="cite">{citation.n}</sup><h4 class="ev-title">{esc(source.title)}</h4></div>'
        f'{_meta(source, _support(citation))}{quote}<p class="ev-abstract">{body}</p></article>'
    )


def _plain_card(source: Source, rank: int, full: bool) -> str:
    abstract = source.abstract or source.best_chunk
    if not full and len(abstract) > _ABSTRACT_PREVIEW:
        abstract = abstract[:_ABSTRACT_PREVIEW].rsplit(" ", 1)[0] + " …"
    return (
        f'<article class="ev-card uncited" data-paper-id="{esc(source.paper_id)}">'
        f'<div class="ev-top"><span class="rank">#{rank}</span><h4 class="ev-title">{esc(source.title)}</h4></div>'
        f'{_meta(source)}<p class="ev-abstract">{esc(abstract)}</p></article>'
    )


def evidence_html(answer: Answer | None) -> str:
    """The evidence panel: cited papers (number, title, metadata, support, highlighted sentence in the abstract),
    then the retrieved-but-uncited ones collapsed; for a refusal, the nearest papers."""
    if answer is None:
        return _EMPTY_EVIDENCE
    if answer.refused:
        cards = "".join(_plain_card(s, i, full=False) for i, s in enumerate(answer.sources, start=1))
        why = f'<p class="ev-reason">{esc(answer.refusal_reason)}</p>' if answer.refusal_reason else ""
        nearest = f'<div class="ev-sub">Nearest papers (none answers the question)</div>{cards}' if cards else ""
        return f'<div class="ev-panel refused"><div class="ev-head">No supporting evidence</div>{why}{nearest}</div>'
    by_id = {s.paper_id: s for s in answer.sources}
    cited = [_cited_card(c, by_id[c.paper_id]) for c in answer.citations if c.paper_id in by_id]
    cited_ids = {c.paper_id for c in answer.citations}
    rest = [s for s in answer.sources if s.paper_id not in cited_ids]
    more = ""
    if rest:
        cards = "".join(_plain_card(s, s.n, full=False) for s in rest)
        more = f'<details class="ev-more"><summary>Also retrieved, not cited ({len(rest)})</summary>{cards}</details>'
    count = f"{len(cited)} cited" + (f" · {len(rest)} more retrieved" if rest else "")
    partial = answer.outcome == "partial"
    missing = f'<p class="ev-reason">Not in the abstracts: {esc(answer.missing)}</p>' if partial else ""
    return (
        f'<div class="ev-panel{" partial" if partial else ""}"><div class="ev-head">Evidence '
        f'<span class="ev-count">{count}</span></div>{missing}{"".join(cited)}{more}</div>'
    )


# --------------------------------------------------------------------------------------------------- markdown


def answer_markdown(answer: Answer) -> str:
    """The answer with its references, as Markdown to copy (plain text: nothing here is rendered by us)."""
    return answer.to_markdown()


# --------------------------------------------------------------------------------------------------- corpus tab


def status_html(papers: int, chunks: int, model: str, where: str) -> str:
    """Index status for the Corpus tab."""
    stats = [(f"{papers:,}", "papers"), (f"{chunks:,}", "chunks"), (model, "embedding model"), (where, "index")]
    cells = "".join(f'<div class="stat"><strong>{esc(v)}</strong><span>{esc(k)}</span></div>' for v, k in stats)
    return f'<div class="corpus-status">{cells}</div>'


def ingest_html(name: str, summary: str, rejected: Sequence[str], added: int) -> str:
    """The outcome of ingesting one uploaded file: what was indexed and each rejected record or file."""
    kind = "ok" if added and not rejected else ("warn" if added else "error")
    head = f"{name}: {added} paper{'s' if added != 1 else ''} added or updated" if added else f"{name}: nothing indexed"
    out = f'<div class="ingest-result {kind}"><div class="ingest-head">{esc(head)}</div>'
    out += f'<div class="ingest-summary">{esc(summary)}</div>'
    if rejected:
        items = "".join(f"<li>{esc(r)}</li>" for r in rejected[:_MAX_REJECTED])
        if len(rejected) > _MAX_REJECTED:
            items += f"<li>… and {len(rejected) - _MAX_REJECTED} more</li>"
        out += f'<details class="rejected" open><summary>Rejected ({len(rejected)})</summary><ul>{items}</ul></details>'
    return out + "</div>"
