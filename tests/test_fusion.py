"""Phrase evidence in the hybrid fusion (rag.fusion): pure functions, no index."""

from __future__ import annotations

import pytest

from rag.fusion import (
    PHRASE_WEIGHT,
    STOPWORDS,
    Hit,
    fold_to_papers,
    fuse_zscore,
    phrase_boost,
    phrase_coverage,
    phrase_pairs,
    phrase_terms,
)


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(c, c.split("#")[0], s) for c, s in pairs]


def test_stopwords_are_the_bm25_sides() -> None:
    from bm25s.stopwords import STOPWORDS_EN

    assert frozenset(STOPWORDS_EN) == STOPWORDS


def test_terms_are_lowercased_content_words_in_order() -> None:
    assert phrase_terms("The T5 model: a Text-to-Text transformer, i.e. x") == [
        "t5",
        "model",
        "text",
        "text",
        "transformer",
    ]


def test_pairs_skip_stopwords_between_content_words() -> None:
    assert phrase_pairs("state of the art") == {("state", "art")}
    assert phrase_pairs("Attention") == set()


def test_coverage_counts_ordered_adjacent_pairs_only() -> None:
    chunk = ("Title", "Our model outperforms the state-of-the-art baselines on 7 out of 11 datasets.")
    assert phrase_coverage("model outperforms the state-of-the-art baselines", chunk) == 1.0
    # the same words in another order share no adjacent pair: BM25 cannot tell the two apart, phrases can
    assert phrase_coverage("baselines outperforms model", chunk) == 0.0
    # 4 pairs in the query, 1 in the chunk: (model, outperforms); the chunk has "outperforms state", "baselines out"
    assert phrase_coverage("model outperforms baselines datasets small", chunk) == pytest.approx(1 / 4)
    assert phrase_coverage("datasets", chunk) == 0.0  # one content word: no pair, no phrase evidence


def test_a_pair_never_spans_the_title_and_the_text() -> None:
    assert phrase_coverage("sparse attention", ("Efficient sparse", "Attention for long documents.")) == 0.0
    assert phrase_coverage("sparse attention", ("Efficient sparse attention", "Long documents.")) == 1.0


def test_boost_scales_bm25_scores_by_coverage_and_resorts() -> None:
    fields = {
        "a#0": ("A", "we propose a new objective for training retrievers"),
        "b#0": ("B", "these observations into a set of objectives and train an encoder"),
    }
    lexical = hits(("a#0", 5.0), ("b#0", 4.0), ("c#0", 3.0))  # c: no texts (deleted meanwhile) keeps its score
    got = phrase_boost("these observations into a set of objectives and train an", lexical, fields)
    assert [h.chunk_id for h in got] == ["b#0", "a#0", "c#0"]
    assert got[0].score == pytest.approx(4.0 * (1 + PHRASE_WEIGHT))
    assert got[1].score == 5.0 and got[2].score == 3.0


def test_boost_leaves_a_one_word_query_alone() -> None:
    lexical = hits(("a#0", 5.0), ("b#0", 4.0))
    assert phrase_boost("ClusterNS", lexical, {"b#0": ("ClusterNS", "ClusterNS ClusterNS")}) == lexical


def test_quoted_fragment_wins_the_fusion_where_word_scores_alone_do_not() -> None:
    """The issue-3 failure: a generic fragment copied from an abstract. BM25 ranks the quoted chunk only a hair
    above the others (a flat list, so the lexical side gets little weight) and dense prefers another paper."""
    query = "the proposed approach demonstrates state-of-the-art or comparable performance with other"
    dense = hits(("x#0", 0.55), ("y#0", 0.50), ("z#0", 0.49), ("q#0", 0.48), ("w#0", 0.47))
    lexical = hits(("q#0", 5.0), ("x#0", 4.9), ("y#0", 4.8), ("z#0", 4.8), ("w#0", 4.7))
    fields = {
        "q#0": ("Q", "Experiments show the proposed approach demonstrates state-of-the-art or comparable performance."),
        "x#0": ("X", "Our approach reaches state-of-the-art performance; the proposed loss is comparable to others."),
        "y#0": ("Y", "A proposed approach with comparable performance."),
        "z#0": ("Z", "Performance of other approaches."),
        "w#0": ("W", "Nothing in common."),
    }
    assert fold_to_papers(fuse_zscore(dense, lexical, depth=50))[0].paper_id == "x"
    assert fold_to_papers(fuse_zscore(dense, phrase_boost(query, lexical, fields), depth=50))[0].paper_id == "q"


def test_own_words_question_keeps_the_dense_choice() -> None:
    """No chunk shares an adjacent content-word pair with the question: the fusion is exactly the old one."""
    query = "training a classifier when only group label proportions are known"
    dense = hits(("a#0", 0.80), ("b#0", 0.40), ("c#0", 0.39), ("d#0", 0.38))
    lexical = hits(("d#0", 5.2), ("c#0", 5.0), ("b#0", 4.9), ("a#0", 4.8))
    fields = {
        "a#0": ("Learning from bag proportions", "We learn an instance classifier from bag-level proportions."),
        "b#0": ("B", "A classifier for groups."),
        "c#0": ("C", "Label noise in training."),
        "d#0": ("D", "When labels are known, training is supervised."),
    }
    boosted = phrase_boost(query, lexical, fields)
    assert boosted == lexical
    assert fuse_zscore(dense, boosted, depth=50)[0].chunk_id == "a#0"


@pytest.mark.parametrize(("coverage", "weight"), [(0.0, 0.0), (0.25, 0.0), (0.325, 0.5), (0.4, 1.0), (0.9, 1.0)])
def test_lexical_gate_scales_bm25_by_the_query_weight_it_matched(coverage: float, weight: float) -> None:
    from rag.fusion import lexical_gate

    assert lexical_gate(coverage) == pytest.approx(weight)


def test_a_gated_out_lexical_side_leaves_the_dense_ranking() -> None:
    dense = hits(("a", 0.9), ("b", 0.5), ("c", 0.4))
    lexical = hits(("c", 30.0), ("b", 2.0), ("a", 1.0))  # sure of a wrong hit
    assert fuse_zscore(dense, lexical, lexical_weight=0.0, depth=50)[0].chunk_id == "a"
    assert fuse_zscore(dense, lexical, lexical_weight=1.0, depth=50)[0].chunk_id == "c"
