"""Sentence splitting for abstracts: llama-index's bundled Punkt splitter, with its abstract-specific slips mended.

Punkt (offline via llama-index's bundled nltk data) breaks after "e.g.", "vs.", "et al." and before decimals
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
    from llama_index.core.node_parser.text.utils import split_by_sentence_tokenizer

    return split_by_sentence_tokenizer()  # type: ignore[no-any-return]


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
