"""Citation checking on real abstracts of the bundled corpus: marker parsing, lexical support, renumbering."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from ingest.formats.hf_pages import read_hf_pages
from rag.citations import CheckedAnswer, check_answer, parse_markers, strip_markers, support
from rag.types import Source

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "hf-papers"

CLUSTERNS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
SIMCSE = "SimCSE: Simple Contrastive Learning of Sentence Embeddings"
DEFSENT = "DefSent: Sentence Embeddings using Definition Sentences"
SARCSE = "Self-Adaptive Reconstruction with Contrastive Learning for Unsupervised Sentence Embeddings"
ESIMCSE = "ESimCSE: Enhanced Sample Building Method for Contrastive Learning of Unsupervised Sentence Embedding"
TSDAE = "TSDAE: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised Sentence Embedding Learning"
CPC = "Representation Learning with Contrastive Predictive Coding"
SOFT_TEACHER = "End-to-End Semi-Supervised Object Detection with Soft Teacher"
REAL_NVP = "Density estimation using Real NVP"


@lru_cache(maxsize=1)
def abstracts() -> dict[str, str]:
    """Title -> abstract of every paper in the bundled pages."""
    return {r.title: r.abstract for f in sorted(BUNDLED.glob("*.txt")) for r in read_hf_pages(f).records}


def sources(*titles: str) -> list[Source]:
    """Sources numbered 1.. in the order given, as the retriever would show them."""
    return [
        Source(n=i, paper_id=f"paper-{i}", title=t, abstract=abstracts()[t], score=1.0 / i, best_chunk="")
        for i, t in enumerate(titles, start=1)
    ]


# ---------------------------------------------------------------------------------------------------- markers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ClusterNS supplies hard negatives [1].", [1]),
        ("Both use contrastive learning [1, 2].", [1, 2]),
        ("Both use contrastive learning [1][2].", [1, 2]),
        ("All three do [1-3].", [1, 2, 3]),
        ("En dash range [2–4].", [2, 3, 4]),
        ("Spaces inside [ 2 ].", [2]),
        ("Semicolons [1; 3].", [1, 3]),
        ("Mixed [1, 3-4] and later [2].", [1, 3, 4, 2]),
        ("Order of appearance [3] then [1].", [3, 1]),
        ("Repeats are kept [1][1].", [1, 1]),
        ("Not a citation [a] nor [i] nor [x1].", []),
        ("Years are not citations [2023].", []),
        ("Numbers above 999 are not citations [1000].", []),
        ("A markdown link [SimCSE](https://arxiv.org/abs/2104.08821).", []),
        ("A numeric link text [1](https://example.org) is a link.", []),
        ("A link whose url holds brackets [docs](https://x.org/a[1]) only.", []),
        ("A footnote [^1] is not ours.", []),
        ("No markers at all.", []),
    ],
)
def test_parse_markers(text: str, expected: list[int]) -> None:
    assert parse_markers(text) == expected


def test_strip_markers_cleans_spacing() -> None:
    assert (
        strip_markers("ClusterNS uses K-means [1, 2]. It works [3] well.") == "ClusterNS uses K-means. It works well."
    )


# ---------------------------------------------------------------------------------------------------- support

HIGH = [
    # verbatim sentence of the abstract
    (CLUSTERNS, "We apply a modified K-means clustering algorithm to supply hard negatives.", "modified K-means"),
    # paraphrases keeping the abstract's terms
    (CLUSTERNS, "ClusterNS uses a modified K-means clustering algorithm to supply hard negatives.", "modified K-means"),
    (CLUSTERNS, "ClusterNS incorporates cluster information into contrastive learning.", "incorporates cluster"),
    (SIMCSE, "SimCSE uses standard dropout as noise, which acts as minimal data augmentation.", "dropout"),
    (SIMCSE, "SimCSE's BERT base models reach 76.3% and 81.6% Spearman's correlation on STS tasks.", "76.3%"),
    (DEFSENT, "DefSent uses definition sentences from a word dictionary.", "word dictionary"),
    (SARCSE, "SARCSE reconstructs all tokens with an AutoEncoder.", "AutoEncoder"),
    (ESIMCSE, "ESimCSE beats unsup-SimCSE by an average Spearman correlation of 2.02% on BERT-base.", "2.02%"),
    (TSDAE, "TSDAE outperforms previous approaches by up to 6.4 points.", "6.4 points"),
    (SOFT_TEACHER, "With Soft Teacher, a 40.9 mAP baseline detector improves by +3.6 mAP to 44.5 mAP on COCO.", "44.5"),
    (
        CPC,
        "The model learns representations by predicting the future in latent space with autoregressive models.",
        "future",
    ),
    (CPC, "Contrastive Predictive Coding is a universal unsupervised learning approach.", "we call Contrastive"),
    # a claim fusing two sentences of one abstract: the whole-abstract recall carries it
    (CLUSTERNS, "ClusterNS supplies hard negatives with K-means and compares favorably on STS tasks.", None),
    # number words match digits ("seven" / "7 STS tasks")
    (SARCSE, "SARCSE gains significant improvements over SimCSE on seven STS tasks.", "7 STS tasks"),
    # a year is context, not a reported number: the abstract need not state it
    (SIMCSE, "SimCSE (2021) uses standard dropout as noise, a minimal data augmentation.", "dropout"),
]


@pytest.mark.parametrize(("title", "claim", "quote_part"), HIGH)
def test_support_high_for_claims_the_abstract_states(title: str, claim: str, quote_part: str | None) -> None:
    score, quote = support(claim, abstracts()[title])
    assert score > 0.6, (score, quote)
    assert quote in abstracts()[title]
    if quote_part is not None:
        assert quote_part in quote


LOW = [
    # a different number than the abstract reports
    (SIMCSE, "SimCSE's BERT base models reach 79.1% and 84.2% Spearman's correlation on STS tasks."),
    (ESIMCSE, "ESimCSE beats unsup-SimCSE by an average Spearman correlation of 4.5% on BERT-base."),
    (TSDAE, "TSDAE outperforms previous approaches by up to 12.8 points."),
    (SOFT_TEACHER, "With Soft Teacher, a 40.9 mAP baseline detector improves by +5.1 mAP to 46.0 mAP on COCO."),
    (SARCSE, "SARCSE gains significant improvements over SimCSE on nine STS tasks."),  # "9" vs "7 STS tasks"
    # a different method name, same wording
    (CLUSTERNS, "DefSent uses a modified K-means clustering algorithm to supply hard negatives."),
    (CLUSTERNS, "SimCSE applies a modified K-means clustering algorithm to supply hard negatives."),
    # a different dataset
    (CLUSTERNS, "ClusterNS is evaluated on the MS MARCO and BEIR retrieval benchmarks."),
    (SOFT_TEACHER, "Soft Teacher improves semi-supervised object detection on Pascal VOC."),
    # a claim about another paper of the same topic, cited to the wrong abstract
    (CLUSTERNS, "SimCSE uses standard dropout as noise, which acts as minimal data augmentation."),
    (CLUSTERNS, "DefSent uses definition sentences from a word dictionary and performs comparably on STS tasks."),
    (SIMCSE, "We apply a modified K-means clustering algorithm to supply hard negatives."),
    (REAL_NVP, "Contrastive Predictive Coding learns representations by predicting the future in latent space."),
    # off-topic
    (CLUSTERNS, "The method achieves state-of-the-art results on image classification."),
]


@pytest.mark.parametrize(("title", "claim"), LOW)
def test_support_low_for_claims_about_something_else(title: str, claim: str) -> None:
    score, _ = support(claim, abstracts()[title])
    assert score < 0.35


def test_support_strips_citation_markers_before_scoring() -> None:
    # Unstripped, "[7]" would read as the number 7, which the abstract never states, and zero the score.
    claim = "ClusterNS uses a modified K-means clustering algorithm to supply hard negatives"
    plain = support(claim + ".", abstracts()[CLUSTERNS])
    assert support(claim + " [7].", abstracts()[CLUSTERNS]) == plain
    assert support(claim + " [1, 2-3].", abstracts()[CLUSTERNS]) == plain
    assert plain[0] > 0.6


@pytest.mark.parametrize(("claim", "evidence"), [("[1][2].", "Some abstract text here."), ("A claim.", "")])
def test_support_of_nothing_is_zero(claim: str, evidence: str) -> None:
    assert support(claim, evidence) == (0.0, "")


# ---------------------------------------------------------------------------------------------------- check_answer

THREE = (CLUSTERNS, SIMCSE, DEFSENT)
K_MEANS = "ClusterNS supplies hard negatives with a modified K-means clustering algorithm"
DROPOUT = "SimCSE uses standard dropout as minimal data augmentation"
DICTIONARY = "DefSent uses definition sentences from a word dictionary"


@pytest.mark.parametrize(
    ("answer", "expected_text", "removed"),
    [
        (f"{K_MEANS} [7].", f"{K_MEANS}.", [7]),
        (f"{K_MEANS} [0].", f"{K_MEANS}.", [0]),
        (f"{K_MEANS} [1, 7].", f"{K_MEANS} [1].", [7]),
        (f"{K_MEANS} [7][1].", f"{K_MEANS} [1].", [7]),
        (f"{K_MEANS} [3-5].", f"{K_MEANS} [1].", [4, 5]),
        (f"{K_MEANS} [9] and more.", f"{K_MEANS} and more.", [9]),
        (f"[9] {K_MEANS} [1].", f"{K_MEANS} [1].", [9]),
        (f"{K_MEANS} [1]. [8] {DROPOUT} [2].", f"{K_MEANS} [1]. {DROPOUT} [2].", [8]),
    ],
)
def test_out_of_range_markers_are_removed(answer: str, expected_text: str, removed: list[int]) -> None:
    checked = check_answer(answer, sources(*THREE))
    assert checked.text == expected_text
    assert checked.removed == removed
    assert parse_markers(checked.text) == [c.n for c in checked.citations]


def test_renumbered_by_first_use() -> None:
    checked = check_answer(f"{DICTIONARY} [3]. {K_MEANS} [1]. Again, {DICTIONARY.lower()} [3].", sources(*THREE))
    assert checked.text == f"{DICTIONARY} [1]. {K_MEANS} [2]. Again, {DICTIONARY.lower()} [1]."
    assert [(c.n, c.paper_id, c.title) for c in checked.citations] == [
        (1, "paper-3", DEFSENT),
        (2, "paper-1", CLUSTERNS),
    ]
    assert checked.renumber_map == {3: 1, 1: 2}
    assert [s.cited for s in checked.sentences] == [[1], [2], [1]]
    assert all(c.supported for c in checked.citations)
    assert "word dictionary" in checked.citations[0].quote
    assert "modified K-means" in checked.citations[1].quote


@pytest.mark.parametrize(
    ("answer", "expected_text"),
    [
        (f"{K_MEANS} [1][1].", f"{K_MEANS} [1]."),
        (f"{K_MEANS} [1, 1].", f"{K_MEANS} [1]."),
        (f"{K_MEANS} [1] and in-batch false negatives [1].", f"{K_MEANS} [1] and in-batch false negatives."),
        (
            f"Both use contrastive learning [1, 2]. {DROPOUT} [2].",
            f"Both use contrastive learning [1][2]. {DROPOUT} [2].",
        ),
        ("Both use contrastive learning [2-1].", "Both use contrastive learning [1][2]."),
    ],
)
def test_duplicates_collapse_and_groups_render_one_per_bracket(answer: str, expected_text: str) -> None:
    checked = check_answer(answer, sources(*THREE))
    assert checked.text == expected_text


UNSUPPORTED_ANSWER = f"{K_MEANS} [1]. SimCSE reaches 91.5% Spearman's correlation on ImageNet [2]. {DICTIONARY} [3]."


def test_unsupported_citation_is_flagged_by_default() -> None:
    checked = check_answer(UNSUPPORTED_ANSWER, sources(*THREE))
    assert checked.text == UNSUPPORTED_ANSWER
    assert [(c.n, c.supported) for c in checked.citations] == [(1, True), (2, False), (3, True)]
    assert checked.unsupported == [2]
    assert checked.dropped == []
    assert [s.supported for s in checked.sentences] == [True, False, True]
    assert checked.sentences[1].score < 0.4 <= checked.sentences[0].score


def test_unsupported_citation_is_dropped_on_request_and_the_rest_renumbered() -> None:
    checked = check_answer(UNSUPPORTED_ANSWER, sources(*THREE), drop_unsupported=True)
    assert checked.text == f"{K_MEANS} [1]. SimCSE reaches 91.5% Spearman's correlation on ImageNet. {DICTIONARY} [2]."
    assert [(c.n, c.paper_id) for c in checked.citations] == [(1, "paper-1"), (2, "paper-3")]
    assert checked.renumber_map == {1: 1, 3: 2}
    assert checked.dropped == [2]
    assert checked.unsupported == []
    assert checked.sentences[1].cited == []
    assert checked.sentences[1].supported is False


def test_threshold_decides_supported() -> None:
    strict = check_answer(f"{K_MEANS} [1].", sources(*THREE), threshold=0.99)
    assert strict.unsupported == [1]
    assert check_answer(f"{K_MEANS} [1].", sources(*THREE), threshold=0.5).unsupported == []


def test_citation_keeps_its_best_sentence() -> None:
    # [1] backs the first sentence weakly and the second strongly: the citation shows the strong quote.
    answer = f"Sentence embeddings matter for retrieval [1]. {K_MEANS} [1]."
    checked = check_answer(answer, sources(*THREE))
    (citation,) = checked.citations
    assert citation.score == max(s.score for s in checked.sentences)
    assert "modified K-means" in citation.quote
    assert checked.sentences[0].score < checked.sentences[1].score


def test_marker_after_the_period_cites_the_sentence_before() -> None:
    checked = check_answer(f"{DROPOUT}. [2] {K_MEANS} [1].", sources(*THREE))
    assert checked.text == f"{DROPOUT}. [1] {K_MEANS} [2]."
    assert [s.cited for s in checked.sentences] == [[1], [2]]
    assert all(s.supported for s in checked.sentences)


def test_answer_without_citations() -> None:
    answer = "Contrastive learning is popular for sentence embeddings.\n\nNothing here is cited."
    checked = check_answer(answer, sources(*THREE))
    assert checked == CheckedAnswer(
        text=answer,
        citations=[],
        sentences=checked.sentences,
        removed=[],
        unsupported=[],
        renumber_map={},
        dropped=[],
    )
    assert [(s.sentence, s.cited, s.score, s.supported) for s in checked.sentences] == [
        ("Contrastive learning is popular for sentence embeddings.", [], 0.0, False),
        ("Nothing here is cited.", [], 0.0, False),
    ]


def test_answer_citing_only_nonexistent_sources() -> None:
    checked = check_answer(f"{K_MEANS} [4]. {DROPOUT} [5, 6].", sources(*THREE))
    assert checked.text == f"{K_MEANS}. {DROPOUT}."
    assert checked.citations == []
    assert checked.removed == [4, 5, 6]
    assert checked.renumber_map == {}
    assert all(s.cited == [] and not s.supported for s in checked.sentences)


def test_no_sources_at_all() -> None:
    checked = check_answer(f"{K_MEANS} [1].", [])
    assert (checked.text, checked.citations, checked.removed) == (f"{K_MEANS}.", [], [1])


def test_markdown_links_are_untouched() -> None:
    answer = (
        f"{K_MEANS} [2], see [the ClusterNS code](https://github.com/x/clusterns) "
        "and [1](https://arxiv.org/abs/2305.09892)."
    )
    checked = check_answer(answer, sources(*THREE))
    assert checked.text == answer.replace("[2],", "[1],")
    assert [c.paper_id for c in checked.citations] == ["paper-2"]
    assert checked.removed == []


def test_layout_is_kept() -> None:
    answer = f"Two methods:\n\n- {K_MEANS} [3].\n- {DROPOUT} [2]."
    checked = check_answer(answer, sources(CPC, SIMCSE, CLUSTERNS))
    assert checked.text == f"Two methods:\n\n- {K_MEANS} [1].\n- {DROPOUT} [2]."
    assert [s.cited for s in checked.sentences] == [[], [1], [2]]
    assert [c.paper_id for c in checked.citations] == ["paper-3", "paper-2"]


def test_support_reads_subscripted_names_as_written_in_questions() -> None:
    abstract_sentence = "ColloSSL improves the F_1 score by 7.9% over the supervised baselines."
    assert (
        support("How much does it improve F1 over the baselines?", abstract_sentence)[0]
        > support("How much does it improve F2 over the baselines?", abstract_sentence)[0]
    )
