"""Citation markup is ours alone: a bracketed number in a title or an abstract ("… negative sampling [3].", a
title "X revisited [7] [1] [2]") is the paper's own reference, and must never be read as one of our [n] markers,
renumbered or removed once that text is quoted in an answer or shown to an LLM.

``neutralize`` inserts an invisible WORD JOINER (U+2060) after the "[" of every group the citation parser would
read: the text looks exactly as written, a quote stays verbatim, and ``rag.citations.parse_markers`` finds nothing
in it. Ingest's normaliser removes every U+2060 from the corpus, so the form is unambiguous and ``restore``
inverts it exactly.

>>> neutralize("trained with negative sampling [3].") == "trained with negative sampling [\\u20603]."
True
>>> parse_markers(neutralize("X revisited [7] [1, 2]"))
[]
"""

from __future__ import annotations

import re

from rag.citations import MARKER_PATTERN

__all__ = ["JOINER", "inert_markdown", "neutralize", "restore"]

JOINER = "\u2060"
# No "not followed by (" here, unlike the parser: a corpus "[3](x)" quoted next to other text must not turn into
# a citation either.
_MARKER = re.compile(MARKER_PATTERN)


def neutralize(text: str) -> str:
    """``text`` (from the corpus) with every citation-like bracket group made inert; see the module docstring."""
    return _MARKER.sub(lambda m: "[" + JOINER + m.group(0)[1:], text)


# A Markdown link or image ("](") and an HTML tag or autolink ("<a", "</", "<!", "<https:").
_RENDERED = re.compile(r"\]\(|<(?=[A-Za-z/!?])")


def inert_markdown(text: str) -> str:
    """``text`` (a question, corpus text, an LLM's words) made inert where we hand out Markdown that other programs
    render (chat clients of the HTTP API, MCP clients, a pasted copy): a planted ``[click](http://…)``, image or
    ``<img …>`` shows as written instead of becoming a live link. The same invisible joiner as ``neutralize``."""
    return _RENDERED.sub(lambda m: m.group(0)[0] + JOINER + m.group(0)[1:], text)


def restore(text: str) -> str:
    """The text as written: ``restore(neutralize(t)) == t`` and ``restore(inert_markdown(t)) == t`` for any text
    without U+2060 (all ingested text)."""
    return text.replace(JOINER, "")
