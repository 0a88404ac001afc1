"""Refusal rules (pure): the similarity floor and the specific-terms check."""

from __future__ import annotations

import pytest

from rag.extractive import extractive_answer
from rag.refusal import _mentions, decide, specific_terms
from rag.types import Source


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("What accuracy does AlphaFold reach on CASP14?", ["AlphaFold", "CASP14"]),
        ("Which papers use K-means for hard negatives?", ["K-means"]),
        ("What did SimCSE evaluate on?", ["SimCSE"]),
        ("How does Whisper's decoder work?", ["Whisper"]),
        ("which methods learn sentence embeddings without labels?", []),
    ],
)
def test_specific_terms(question: str, terms: list[str]) -> None:
    assert specific_terms(question) == terms


@pytest.mark.parametrize(
    ("text", "term", "found"),
    [
        ("we report F_1 scores on three datasets", "F1", True),  # LaTeX-ish spelling in an abstract
        ("beats GPT-4 and GPT 3.5", "GPT4", True),
        ("beats GPT4 on MMLU", "GPT-4", True),
        ("uses a modified K means clustering", "K-means", True),
        ("the F12 protein", "F1", False),  # still whole tokens only
        ("an F1-score of 80", "F2", False),
    ],
)
def test_mentions_tolerates_separators_but_not_other_tokens(text: str, term: str, found: bool) -> None:
    assert _mentions(text, term) is found


EVIDENCE = ["PRES: memory-based dynamic graph neural networks. We study temporal graph neural networks (GNN) ..."]


@pytest.mark.parametrize(
    ("question", "evidence", "top", "refused", "reason"),
    [
        ("Who won the World Cup?", EVIDENCE, 0.12, True, "no abstract is close"),
        ("What accuracy does AlphaFold reach?", EVIDENCE, 0.5, True, "mentions AlphaFold"),
        ("How does PRES train dynamic GNNs?", EVIDENCE, 0.5, False, ""),
        # An acronym the abstract only spells out still counts as mentioned.
        ("How does PRES train dynamic GNN models?", ["PRES trains dynamic graph neural networks."], 0.5, False, ""),
        ("Anything", [], 0.9, True, "nothing was retrieved"),
    ],
)
def test_decide(question: str, evidence: list[str], top: float, refused: bool, reason: str) -> None:
    d = decide(question, evidence, top, min_similarity=0.2)
    assert d.refused is refused
    assert reason in d.reason


def test_extractive_quotes_the_opening_when_only_the_title_matches() -> None:
    src = Source(
        1,
        "p",
        "WhiteningBERT: An Easy Unsupervised Sentence Embedding Approach",
        "Producing sentence embeddings in an unsupervised way is valuable. We study whitening. It helps.",
        1.0,
        "",
    )
    text = extractive_answer("WhiteningBERT", [src])
    assert "“Producing sentence embeddings in an unsupervised way is valuable.” [1]" in text
