"""The offline answerer: no LLM, no generated text. It quotes the abstract sentences that best match the question,
verbatim, grouped per paper, each followed by its [n]. Deterministic: same index + question -> same answer."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.sentences import split_sentences
from rag.citations import support
from rag.markup import neutralize
from rag.types import Source

__all__ = ["EXTRACTIVE_LABEL", "EXTRACTIVE_NOTE", "extractive_answer"]

EXTRACTIVE_LABEL = "extractive mode (no LLM configured)"
EXTRACTIVE_NOTE = (
    f"{EXTRACTIVE_LABEL} — to use an LLM set RAG_LLM__PROVIDER=openai (and OPENAI_API_KEY), or "
    "RAG_LLM__PROVIDER=openai-compatible with RAG_LLM__BASE_URL (Ollama, vLLM, llama.cpp server)"
)


def _best_sentences(question: str, title: str, abstract: str, per_paper: int) -> list[tuple[int, str, float]]:
    scored = [(i, s, support(question, s)[0]) for i, s in enumerate(split_sentences(abstract))]
    if scored and all(t[2] == 0 for t in scored) and support(question, title)[0] > 0:
        # The question names the paper (e.g. just "WhiteningBERT") but no sentence repeats it: its opening
        # sentences say what the paper is about.
        return scored[:per_paper]
    best = sorted(scored, key=lambda t: (-t[2], t[0]))[:per_paper]
    # Quote in the abstract's own order so the excerpt reads naturally.
    return sorted((t for t in best if t[2] > 0), key=lambda t: t[0])


def extractive_answer(question: str, sources: Sequence[Source], max_papers: int = 3, per_paper: int = 2) -> str:
    """Markdown answer quoting the top papers. ``sources`` best-first; their ``n`` are the citation numbers."""
    blocks: list[str] = []
    for src in sources:
        quotes = _best_sentences(question, src.title, src.abstract, per_paper)
        if not quotes:
            continue
        # Corpus text is quoted with its own bracketed numbers made inert: only the [n] after each quote cites.
        quoted = " ".join(f"“{neutralize(s)}” [{src.n}]" for _, s, _ in quotes)
        blocks.append(f"- **{neutralize(src.title)}**: {quoted}")
        if len(blocks) == max_papers:
            break
    if not blocks:
        return ""
    lead = (
        f"{len(blocks)} indexed paper{'s' if len(blocks) > 1 else ''} bear{'' if len(blocks) > 1 else 's'} "
        f"on this; the most relevant sentences of {'their abstracts' if len(blocks) > 1 else 'its abstract'}, "
        f"quoted verbatim ({EXTRACTIVE_LABEL}):"
    )
    return lead + "\n\n" + "\n".join(blocks)
