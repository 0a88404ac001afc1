"""The offline answerer: no LLM, no generated text. It quotes, verbatim, the abstract sentences the answerability
decision picked (rag.answerability), leading with the paper that answers, each quote followed by its [n].
Deterministic: same index + question -> same answer."""

from __future__ import annotations

from rag.answerability import Decision, PaperEvidence
from rag.markup import neutralize

__all__ = ["EXTRACTIVE_LABEL", "EXTRACTIVE_NOTE", "extractive_answer"]

EXTRACTIVE_LABEL = "extractive mode (no LLM configured)"
EXTRACTIVE_NOTE = (
    f"{EXTRACTIVE_LABEL} — to use an LLM set RAG_LLM__PROVIDER=openai (and OPENAI_API_KEY), or "
    "RAG_LLM__PROVIDER=openai-compatible with RAG_LLM__BASE_URL (Ollama, vLLM, llama.cpp server)"
)


def _quoted(paper: PaperEvidence) -> str:
    # The answering sentence first (it holds the number when a number was asked), then the next best. Corpus text
    # is quoted with its own bracketed numbers made inert (rag.markup): only the [n] after each quote cites.
    quotes = " ".join(f"“{neutralize(q.text)}” [{paper.source.n}]" for q in paper.quotes)
    return f"**{neutralize(paper.source.title)}**: {quotes}"


def extractive_answer(decision: Decision) -> str:
    """Markdown for an answered or partial decision ("" for a refusal): the lead paper first."""
    if decision.outcome == "refused" or not decision.evidence:
        return ""
    lead, *others = decision.evidence
    if decision.outcome == "partial":
        return (
            f"The abstract of **{neutralize(lead.source.title)}** [{lead.source.n}] does not give "
            f"{neutralize(decision.missing)}. What it does say ({EXTRACTIVE_LABEL}):\n\n- {_quoted(lead)}"
        )
    if not others:
        return f"One indexed paper answers this; its abstract says ({EXTRACTIVE_LABEL}):\n\n- {_quoted(lead)}"
    blocks = "\n".join(f"- {_quoted(p)}" for p in decision.evidence)
    return (
        f"{len(decision.evidence)} indexed papers bear on this, the most relevant first; their abstracts say "
        f"({EXTRACTIVE_LABEL}):\n\n{blocks}"
    )
