"""Sentence splitting for abstracts: NLTK's Punkt splitter as llama-index's ``SentenceSplitter`` runs it (untrained
parameters, so nothing is downloaded), with its abstract-specific slips mended.

Punkt breaks after "e.g.", "vs.", "et al." and before decimals
in abstracts ("Accuracy is 91.2 vs. " | "89."); such fragments are glued back to the next piece, so every
sentence handed to chunking and quoting is a whole one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["split_sentences"]

_ABBREV_END = re.compile(r"(\b(e\.g|i\.e|a\.k\.a|vs|et al|etc|cf|fig|figs|eq|eqs|sec|no|approx|resp|ca)\.)\s*$", re.I)
_MIN_SENTENCE_CHARS = 12


@lru_cache(maxsize=1)
def _punkt() -> Callable[[str], list[str]]:
    # NLTK directly rather than llama-index's split_by_sentence_tokenizer, which wraps the same tokenizer: importing
    # llama-index costs ~2 s of every cold start, and nothing else on the query path needs it.
    from nltk.tokenize import PunktSentenceTokenizer

    tokenizer = PunktSentenceTokenizer()

    def split(text: str) -> list[str]:
        # Each piece runs to the next sentence's start, as llama-index's splitter cuts: whitespace stays attached.
        starts = [start for start, _ in tokenizer.span_tokenize(text)]
        return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]

    return split


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, whitespace-stripped, concatenation-preserving up to whitespace."""
    pieces = [p for p in _punkt()(text) if p.strip()]
    merged: list[str] = []
    carry = ""
    for piece in pieces:
        cur = carry + piece
        if _ABBREV_END.search(cur) or len(cur.strip()) < _MIN_SENTENCE_CHARS:
            carry = cur
            continue
        merged.append(cur.strip())
        carry = ""
    if carry.strip():
        if merged:
            merged[-1] = f"{merged[-1]} {carry.strip()}"
        else:
            merged.append(carry.strip())
    return merged
