"""Deciding that the indexed abstracts do not answer a question (pure logic, no LLM).

Two kinds of questions to refuse:
- off-topic (cooking, sports): even the best chunk is far from the question -> a dense-similarity floor;
- on-topic but absent (a named model, benchmark or result no abstract mentions, e.g. "AlphaFold on CASP14"):
  similarity is high because the topic is ML, so a floor cannot catch them. Instead the *specific terms* of the
  question (names with capitals inside or digits, acronyms, capitalised words mid-sentence) must occur in the
  retrieved evidence; a question whose specific term occurs in none of the retrieved papers is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["RefusalDecision", "decide", "specific_terms"]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9\-\.]*[A-Za-z0-9]|[A-Za-z]")
# Capitalised words that are not names even mid-sentence.
_COMMON = frozenset(
    [
        "i",
        "a",
        "an",
        "the",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "why",
        "when",
        "where",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "may",
        "might",
        "paper",
        "papers",
        "method",
        "methods",
        "model",
        "models",
        "approach",
        "work",
        "works",
        "english",
        "german",
        "chinese",
        "french",
        "transformer",
        "transformers",
    ]
)


def specific_terms(question: str) -> list[str]:
    """Names in the question that evidence must mention: 'CASP14', 'GPT-4', 'SimCSE', 'BERT', 'Whisper'."""
    terms: list[str] = []
    for i, m in enumerate(_TOKEN.finditer(question)):
        tok = m.group(0).rstrip(".-")
        tok = re.sub(r"'s$", "", tok)
        if len(tok) < 2 or tok.lower() in _COMMON:
            continue
        has_digit = any(c.isdigit() for c in tok)
        inner_cap = any(c.isupper() for c in tok[1:])
        capitalised_mid = i > 0 and tok[0].isupper()
        if has_digit or inner_cap or capitalised_mid:
            terms.append(tok)
    return list(dict.fromkeys(terms))


@dataclass(frozen=True)
class RefusalDecision:
    refused: bool
    reason: str = ""
    missing_terms: list[str] = field(default_factory=list)
    top_similarity: float | None = None


def _term_pattern(term: str) -> str:
    """A regex for ``term`` tolerant of a hyphen, space or underscore where the term has a hyphen or switches
    between letters and digits: "GPT-4" ~ "GPT 4" ~ "GPT4", "F1" ~ "F_1" (LaTeX-ish abstracts), "K-means"."""
    t = term.lower()
    sep = r"[\-\s_]?"
    out: list[str] = []
    for i, ch in enumerate(t):
        if ch == "-":
            out.append(sep)
            continue
        prev = t[i - 1] if i else ""
        if prev and prev != "-" and ((prev.isalpha() and ch.isdigit()) or (prev.isdigit() and ch.isalpha())):
            out.append(sep)
        out.append(re.escape(ch))
    return "".join(out)


def _mentions(text: str, term: str) -> bool:
    # Whole-token match, case-insensitive, separator-tolerant (see _term_pattern).
    pattern = _term_pattern(term)
    if re.search(rf"(?<![a-z0-9]){pattern}(?![a-z0-9])", text.lower()):
        return True
    # An acronym the abstract spells out: "GNN" ~ "graph neural networks", "STS" ~ "semantic textual similarity".
    letters = term[:-1] if term.endswith("s") and term[:-1].isupper() else term
    if letters.isalpha() and letters.isupper() and 2 <= len(letters) <= 6:
        spelled = r"[\s\-]+".join(rf"{c}[a-z]*" for c in letters.lower())
        return re.search(rf"\b{spelled}", text.lower()) is not None
    return False


def decide(
    question: str, evidence: Sequence[str], top_similarity: float | None, min_similarity: float
) -> RefusalDecision:
    """``evidence``: title + abstract of each retrieved paper; ``top_similarity``: best dense cosine (None if
    dense retrieval did not run)."""
    if not evidence:
        return RefusalDecision(True, "nothing was retrieved", [], top_similarity)
    if top_similarity is not None and top_similarity < min_similarity:
        return RefusalDecision(
            True, f"no abstract is close to the question (best similarity {top_similarity:.2f})", [], top_similarity
        )
    missing = [t for t in specific_terms(question) if not any(_mentions(text, t) for text in evidence)]
    if missing:
        names = ", ".join(missing)
        return RefusalDecision(True, f"no retrieved abstract mentions {names}", missing, top_similarity)
    return RefusalDecision(False, "", [], top_similarity)
