"""Questions generated from the corpus itself, for checks that need no hand labels.

"Wording-reuse" questions: a 10-word window of a random non-first sentence of an abstract (seeded). They reuse
the abstract's own words, the case where BM25 is strong and a dense model with a 256-piece window is not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from rag.sentences import split_sentences
from rag.types import Paper

__all__ = ["Question", "wording_reuse_questions"]


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    gold: tuple[str, ...]
    kind: str


def wording_reuse_questions(papers: list[Paper], n: int, seed: int = 7, words: int = 10) -> list[Question]:
    rng = random.Random(seed)
    out: list[Question] = []
    for i, paper in enumerate(rng.sample(papers, min(n, len(papers)))):
        sentences = split_sentences(paper.abstract)
        sentence = rng.choice(sentences[1:] or sentences)
        tokens = sentence.split()
        start = rng.randint(0, max(0, len(tokens) - words))
        out.append(Question(f"wording-{i:03d}", " ".join(tokens[start : start + words]), (paper.paper_id,), "wording"))
    return out
