"""The optional query-rewriting stage: the configured chat LLM restates the question before retrieval. Off by default.

>>> rewriter = build_rewriter(settings.rewrite, llm)     # None when rewrite.mode = "none"
>>> probes, note = rewrite(rewriter, question)           # what to search; note "" unless the stage fell back

Two modes, one ``Rewriter`` seam (rag.protocols) returning the searches (``rag.types.Probe``) that stand for the
question; ``Retriever.search`` runs each like a plain query and fuses their rankings by reciprocal rank:

- ``HydeRewriter`` (HyDE, Gao et al. 2022): the LLM writes a short hypothetical abstract answering the question.
  The dense side searches the mean of the question's vector and the passage's, as the HyDE paper does (it counts
  the query as one more hypothesis): a small model's passage that drifts off topic is pulled back by the question.
  BM25 searches the question (or question + passage, ``rewrite.hyde_bm25``; docs/retrieval.md has both measured).
- ``MultiQueryRewriter`` (RAG-Fusion): the LLM writes N rephrasings; the question and each rephrasing are
  searched and the rankings fused with ``rag.fusion.fuse_rrf``.

Not the follow-up rewrite (``Assistant._standalone``, which makes a follow-up standalone): this stage runs on the
standalone question. A stage that fails (an unreachable or slow server, an HTTP error, a reply with nothing usable)
never fails the question: ``rewrite`` returns the question alone with a note, which the answer shows in its flags.
"""

from __future__ import annotations

import re

from rag.protocols import ChatModel, Rewriter
from rag.settings import CONFIGURE_LLM, RewriteSettings
from rag.types import Probe

__all__ = [
    "MIN_PASSAGE_WORDS",
    "PASSAGE_CHARS",
    "HydeRewriter",
    "MultiQueryRewriter",
    "RewriteError",
    "build_rewriter",
    "parse_passage",
    "parse_queries",
    "rewrite",
]

# The bundled embedder reads 256 word-pieces (~1 000 characters of English): a longer passage would be cut there
# anyway, and on the BM25 side its tail would outweigh the question.
PASSAGE_CHARS = 1000
MIN_PASSAGE_WORDS = 5  # fewer is a refusal or a preamble ("Sure, here it is."), not an abstract
MAX_QUERY_CHARS = 300  # a search query, not a paragraph: longer lines are the model answering instead
_LABEL = re.compile(r"^\W*(?:abstract|answer|query|search query|rephrasing)(?:\s*\d+)?\W*:[\s*]*", re.I)
_TITLE = re.compile(r"^\W*title\W*:", re.I)
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\(?\d{1,2}[.):]|q\d{1,2}[.):])\s*", re.I)
_WORD = re.compile(r"\w+")
_TAG = re.compile(r"</?\w+>")  # the prompt's <question> tags, which a small model echoes around its lines


class RewriteError(RuntimeError):
    """A rewrite reply was unusable (``str(error)`` is one line fit to show the user)."""


def parse_passage(reply: str) -> str:
    """The hypothetical abstract in a reply: a leading "Abstract:"/"Title: …" label line dropped, on one line, cut
    to ``PASSAGE_CHARS`` at a word; "" when fewer than ``MIN_PASSAGE_WORDS`` words are left."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if len(lines) > 1 and _TITLE.match(lines[0]):
        lines = lines[1:]  # a title line before the abstract: the model's guess of a name, no evidence of topic
    text = _LABEL.sub("", " ".join(_TAG.sub(" ", " ".join(lines)).split()), count=1).strip().strip('"')
    if len(text) > PASSAGE_CHARS:
        text = text[:PASSAGE_CHARS].rsplit(" ", 1)[0]
    return text if len(_WORD.findall(text)) >= MIN_PASSAGE_WORDS else ""


def parse_queries(reply: str, question: str, n: int) -> list[str]:
    """Up to ``n`` rephrasings in a reply, one per line: list markers, "Query 2:" labels and quotes stripped;
    headers (a line ending in ":"), one-word lines, repeats and the question itself skipped; long lines cut."""
    seen = {_key(question)}
    out: list[str] = []
    for line in reply.splitlines():
        text = _LABEL.sub("", _LIST_MARKER.sub("", _TAG.sub("", line).strip()), count=1).strip().strip("\"'`").strip()
        if text.endswith(":") or len(_WORD.findall(text)) < 2 or _key(text) in seen:
            continue
        if len(text) > MAX_QUERY_CHARS:
            text = text[:MAX_QUERY_CHARS].rsplit(" ", 1)[0]
        seen.add(_key(text))
        out.append(text)
        if len(out) == n:
            break
    return out


def _key(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class HydeRewriter:
    """One search: the question's vector averaged with a hypothetical abstract's; BM25 on the question (or both)."""

    def __init__(self, llm: ChatModel, bm25_passage: bool = False) -> None:
        self.llm = llm
        self.bm25_passage = bm25_passage
        self.name = f"HyDE with LLM {_model(llm)}"

    def probes(self, query: str) -> list[Probe]:
        from rag.llms import complete_chat
        from rag.prompts import build_hyde_messages
        from rag.text_normalize import one_line

        reply = complete_chat(self.llm, build_hyde_messages(query))
        passage = parse_passage(reply)
        if not passage:
            raise RewriteError(f"its reply holds no passage of {MIN_PASSAGE_WORDS}+ words: {one_line(reply)!r}")
        return [Probe(query, passage, f"{query} {passage}" if self.bm25_passage else "")]


class MultiQueryRewriter:
    """The question and ``n`` rephrasings of it, each searched; their rankings are fused by reciprocal rank."""

    def __init__(self, llm: ChatModel, n: int = 3) -> None:
        if n <= 0:
            raise ValueError("n must be positive")
        self.llm = llm
        self.n = n
        self.name = f"multi-query with LLM {_model(llm)}"

    def probes(self, query: str) -> list[Probe]:
        from rag.llms import complete_chat
        from rag.prompts import build_multi_query_messages
        from rag.text_normalize import one_line

        reply = complete_chat(self.llm, build_multi_query_messages(query, self.n))
        rephrasings = parse_queries(reply, query, self.n)
        if not rephrasings:
            raise RewriteError(f"its reply holds no rephrasing of the question: {one_line(reply)!r}")
        return [Probe(query), *(Probe(q) for q in rephrasings)]


def build_rewriter(cfg: RewriteSettings, llm: ChatModel | None = None) -> Rewriter | None:
    """The configured stage (None: the question is searched as asked). ValueError for a configuration that cannot
    work."""
    if cfg.mode == "none":
        return None
    if llm is None:
        raise ValueError(f"RAG_REWRITE__MODE={cfg.mode} needs an LLM: {CONFIGURE_LLM}")
    if cfg.mode == "hyde":
        return HydeRewriter(llm, bm25_passage=cfg.hyde_bm25 == "question+passage")
    return MultiQueryRewriter(llm, cfg.queries)


def rewrite(rewriter: Rewriter, query: str) -> tuple[list[Probe], str]:
    """The searches standing for ``query`` and a note ("" on success). On any failure of the stage: the question
    searched as asked, and a one-line note saying so."""
    try:
        probes = rewriter.probes(query)
        if not probes:
            raise RewriteError("it returned no query to search")
    except Exception as exc:
        from rag.llms import failure_reason

        reason = failure_reason(exc, RewriteError)
        return [Probe(query)], f"query rewrite ({rewriter.name}) failed ({reason}); searched the question as asked"
    return probes, ""


def _model(llm: ChatModel) -> str:
    return str(getattr(llm, "model", type(llm).__name__))
