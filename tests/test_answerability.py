"""The three outcomes (pure logic): question analysis, name matching, the decision and the extractive text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.answerability import Decision, Thresholds, decide, gather, rest_of_question
from rag.extractive import extractive_answer
from rag.prompts import parse_partial
from rag.question import analyse, asks_for_several, canonical, mentions, specific_terms
from rag.types import Source

TH = Thresholds(
    min_similarity=0.2,
    min_margin=0.0,
    min_margin_named=-0.3,
    min_detail=0.5,
    companion_ratio=0.8,
    companion_ratio_one=1.2,
    companion_score_ratio=0.6,
    companion_support_one=0.0,
    min_rest_margin=0.0,
    min_rest_support=0.3,
)
GUIDED = Source(
    1,
    "guided",
    "Diffusion Models Beat GANs on Image Synthesis",
    "We show that diffusion models can achieve image sample quality superior to the current state-of-the-art "
    "generative models. We achieve an FID of 2.97 on ImageNet 128times128, 4.59 on ImageNet 256times256. "
    "Classifier guidance trades off diversity for fidelity.",
    1.0,
    "",
)
WAV2VEC = Source(
    1,
    "wav2vec2",
    "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech Representations",
    "We show for the first time that learning powerful representations from speech audio alone followed by "
    "fine-tuning on transcribed speech can outperform the best semi-supervised methods. wav2vec 2.0 masks the "
    "speech input in the latent space. Using just ten minutes of labeled data achieves 4.8/8.2 WER.",
    1.0,
    "",
)
SIMCSE = Source(
    1,
    "simcse",
    "SimCSE: Simple Contrastive Learning of Sentence Embeddings",
    "This paper presents SimCSE, a simple contrastive learning framework. We evaluate SimCSE on standard semantic "
    "textual similarity (STS) tasks, and our unsupervised model using BERT base achieves an average of 76.3% "
    "Spearman's correlation.",
    1.0,
    "",
)
OTHER = Source(2, "other", "Graph Neural Networks for Molecules", "We predict molecule properties with GNNs.", 0.5, "")


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("What accuracy does AlphaFold reach on CASP14?", ["AlphaFold", "CASP14"]),
        ("Which papers use K-means for hard negatives?", ["K-means"]),
        ("What did SimCSE evaluate on?", ["SimCSE"]),
        ("What FID does guided diffusion reach on ImageNet 128x128?", ["FID", "ImageNet", "128x128"]),  # no "x128"
        ("Which papers adapt CLIP-style models?", ["CLIP"]),
        ("PhD thesis on binary hash codes", []),
        ("which methods learn sentence embeddings without labels?", []),
    ],
)
def test_specific_terms(question: str, terms: list[str]) -> None:
    assert specific_terms(question) == terms


@pytest.mark.parametrize(
    ("text", "expected"),
    [("ImageNet 128times128", "ImageNet 128x128"), ("256 \\times 256", "256x256"), ("F_1 of 80", "F1 of 80")],
)
def test_canonical_sizes_and_subscripts(text: str, expected: str) -> None:
    assert canonical(text) == expected


@pytest.mark.parametrize(
    ("text", "term", "found"),
    [
        ("we report F_1 scores on three datasets", "F1", True),
        ("beats GPT-4 and GPT 3.5", "GPT4", True),
        ("uses a modified K means clustering", "K-means", True),
        ("an FID of 2.97 on ImageNet 128times128", "128x128", True),
        ("we maximise the evidence lower bound", "ELBO", True),  # an acronym spelled out, letters shared
        ("trained with graph neural networks", "GNN", True),
        ("the F12 protein", "F1", False),
        ("a good network", "GNN", False),
    ],
)
def test_mentions(text: str, term: str, found: bool) -> None:
    assert mentions(text, term) is found


@pytest.mark.parametrize(
    ("question", "kind", "detail"),
    [
        ("What batch size was used to pretrain wav2vec 2.0?", "number", "batch size"),
        ("How many GPU-hours did it take to train SimCSE?", "number", "GPU-hours"),
        ("What did SimCSE evaluate on?", "dataset", ""),
        ("Does DefSent rely on NLI datasets?", "yesno", ""),
        ("RL from a fixed logged dataset with hard constraints", "open", ""),
        ("Which backbone does SimCSE build on?", "entity", "backbone"),
        ("Which papers use mixture-of-experts architectures?", "open", ""),  # several papers, not one thing
    ],
)
def test_analyse(question: str, kind: str, detail: str) -> None:
    spec = analyse(question)
    assert (spec.kind, spec.detail) == (kind, detail)


@pytest.mark.parametrize(
    ("question", "counts"),
    [
        ("How many images are in the curated dataset DINOv2 builds?", True),
        ("How many hours of unlabeled audio was wav2vec pre-trained on?", True),
        ("How much faster is LLMLingua-2?", False),  # an amount, not a count of something named
        ("What batch size was used to pretrain wav2vec 2.0?", False),
    ],
)
def test_a_count_is_read_off_how_many(question: str, counts: bool) -> None:
    assert analyse(question).counts is counts


DINO = Source(
    1,
    "dinov2",
    "DINOv2: Learning Robust Visual Features without Supervision",
    "We propose an automatic pipeline to build a dedicated, diverse, and curated image dataset. We train a ViT "
    "model (Dosovitskiy et al., 2020) with 1B parameters and distill it into smaller models on images.",
    1.0,
    "",
)


@pytest.mark.parametrize(
    ("question", "outcome"),
    [
        # "1B parameters" counts parameters, and a reference's year is no value: the image count is missing.
        ("How many images are in the curated dataset that DINOv2 builds?", "partial"),
        ("How many parameters does the DINOv2 ViT model have?", "answered"),
    ],
)
def test_a_count_is_answered_only_by_a_value_counting_the_thing_asked(question: str, outcome: str) -> None:
    assert _decide(question, [DINO]).outcome == outcome  # type: ignore[attr-defined]


def test_the_counted_thing_may_be_named_before_the_value() -> None:
    src = Source(
        1,
        "semeval",
        "SemEval-2024 Task 8: Machine-Generated Text Detection",
        "The task attracted a large number of participants: subtask A monolingual (126), subtask B (70).",
        1.0,
        "",
    )
    d = _decide("How many participants did subtask A of SemEval-2024 Task 8 attract?", [src])
    assert d.outcome == "answered" and "126" in extractive_answer(d)  # type: ignore[attr-defined,arg-type]


@pytest.mark.parametrize(
    ("question", "several"),
    [
        ("Which papers use K-means for hard negatives?", True),
        ("What methods learn sentence embeddings without labels?", True),
        ("Is there work on recognising micro-expressions?", True),
        ("Are there any approaches that prune transformers?", True),
        ("sentence embedding methods that use a denoising objective", True),
        ("training-free ways to get sentence embeddings", True),
        ("Which method supplies the hard negatives?", False),
        ("What did SimCSE evaluate on?", False),
        ("An overview of methods for multi-task learning", False),  # the head is "overview"
        ("one controller that works for creatures with unseen bodies", False),  # "works" is the verb
        ("Do rehearsal-free methods break down under domain shift?", False),
    ],
)
def test_asks_for_several(question: str, several: bool) -> None:
    assert asks_for_several(question) is several


def _decide(question: str, sources: list[Source], top: float = 0.5, background: float = 0.2) -> object:
    spec = analyse(question)
    return decide(spec, gather(spec, sources), top, background, TH)


def test_refusals_name_their_reason() -> None:
    assert "no abstract is close" in _decide("Who won the World Cup?", [OTHER], top=0.1).reason  # type: ignore[attr-defined]
    everyday = _decide("How many players does a volleyball team field?", [OTHER], top=0.3, background=0.45)
    assert everyday.outcome == "refused" and "ML research" in everyday.reason  # type: ignore[attr-defined]
    absent = _decide("What accuracy does AlphaFold reach on CASP14?", [OTHER, SIMCSE])
    assert absent.outcome == "refused" and "AlphaFold" in absent.reason  # type: ignore[attr-defined]
    assert decide(analyse("Anything?"), [], 0.9, 0.1, TH).outcome == "refused"


def test_number_written_as_latex_size_is_answered_with_the_number() -> None:
    d = _decide("What FID does guided diffusion reach on ImageNet 128x128?", [GUIDED])
    assert d.outcome == "answered"  # type: ignore[attr-defined]
    text = extractive_answer(d)  # type: ignore[arg-type]
    assert "2.97" in text.split("[1]")[0]  # the quote that answers comes first


def test_a_missing_detail_is_partial_and_named() -> None:
    d = _decide("What batch size was used to pretrain wav2vec 2.0?", [WAV2VEC, OTHER])
    assert (d.outcome, d.missing) == ("partial", "batch size")  # type: ignore[attr-defined]
    text = extractive_answer(d)  # type: ignore[arg-type]
    assert text.startswith("The abstract of **wav2vec 2.0") and "does not give batch size" in text
    sts_b = _decide("What accuracy on STS-B does SimCSE report with BERT-base?", [SIMCSE, OTHER])
    assert (sts_b.outcome, sts_b.missing) == ("partial", "STS-B")  # type: ignore[attr-defined]
    assert sts_b.evidence[0].source is SIMCSE  # type: ignore[attr-defined]


def test_a_which_question_quotes_the_sentence_naming_a_thing_first() -> None:
    """SimCSE's best-overlapping sentence says what SimCSE is; the one answering "which encoder" names BERT base."""
    d = _decide("Which pretrained encoder does SimCSE use for its sentence embeddings?", [SIMCSE, OTHER])
    assert d.outcome == "answered"  # type: ignore[attr-defined]
    assert "BERT base" in d.evidence[0].quotes[0].text  # type: ignore[attr-defined]


def test_one_paper_answers_are_not_padded() -> None:
    d = _decide("What average correlation does SimCSE reach on STS tasks?", [SIMCSE, OTHER])
    assert d.outcome == "answered" and [p.source for p in d.evidence] == [SIMCSE]  # type: ignore[attr-defined]
    text = extractive_answer(d)  # type: ignore[arg-type]
    assert "76.3%" in text and "[2]" not in text


SIMCSE_RUNNER_UP = Source(
    2,
    "dropout-cl",
    "Dropout as Augmentation for Contrastive Sentence Embeddings",
    "We study contrastive learning of sentence vectors with dropout noise. Our model evaluates on STS tasks.",
    0.9,
    "",
)


def test_a_paper_sharing_the_topic_pads_a_list_question_not_a_one_paper_question() -> None:
    one = _decide(
        "Which framework learns sentence embeddings with contrastive learning on STS tasks?", [SIMCSE, SIMCSE_RUNNER_UP]
    )
    several = _decide(
        "Which papers learn sentence embeddings with contrastive learning on STS tasks?", [SIMCSE, SIMCSE_RUNNER_UP]
    )
    assert [p.source for p in one.evidence] == [SIMCSE]  # type: ignore[attr-defined]
    assert [p.source for p in several.evidence] == [SIMCSE, SIMCSE_RUNNER_UP]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("score", "quoted"), [(0.9, True), (0.3, False)])
def test_a_one_paper_answer_adds_a_paper_only_when_retrieval_rates_it_close(score: float, quoted: bool) -> None:
    question = "Which framework learns sentence embeddings with contrastive learning?"
    close = Source(
        2,
        "close",
        "Contrastive sentence embeddings",
        "We learn sentence embeddings with contrastive learning.",
        score,
        "",
    )
    d = _decide(question, [SIMCSE, close])
    assert d.evidence[0].source is SIMCSE and (close in [p.source for p in d.evidence]) is quoted  # type: ignore[attr-defined]


def test_the_sentence_that_answers_leads_even_without_the_papers_name() -> None:
    src = Source(
        1,
        "lingua2",
        "LLMLingua-2: Data Distillation for Efficient Prompt Compression",
        "This paper focuses on task-agnostic prompt compression. We distil data from a large model. Our model is "
        "3x-6x faster than existing prompt compression methods.",  # the name only in the title
        1.0,
        "",
    )
    text = extractive_answer(_decide("How much faster is LLMLingua-2 than existing prompt compression methods?", [src]))  # type: ignore[arg-type]
    assert text.index("3x-6x") < text.index("task-agnostic")


def test_extractive_quotes_the_opening_when_nothing_overlaps() -> None:
    src = Source(1, "p", "WhiteningBERT", "Producing sentence embeddings is valuable. We study whitening.", 1.0, "")
    d = _decide("a trick to make text vectors isotropic", [src])
    assert "“Producing sentence embeddings is valuable.” [1]" in extractive_answer(d)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "missing", "rest"),
    [
        ("PARTIAL: the abstracts do not give the batch size. It says X [1].", "the batch size", "It says X [1]."),
        ("**PARTIAL:** The abstracts do not report GPU-hours.\nStuff [2]", "GPU-hours", "Stuff [2]"),
        ("SimCSE uses dropout [1].", "", "SimCSE uses dropout [1]."),
    ],
)
def test_parse_partial(reply: str, missing: str, rest: str) -> None:
    assert parse_partial(reply) == (missing, rest)


def test_a_question_that_is_only_a_name_quotes_the_sentence_defining_it() -> None:
    """Scoring sentences without the paper's own names leaves "What is ClusterNS?" nothing to match: the sentence
    that names ClusterNS is the definition, not the abstract's opening."""
    src = Source(
        1,
        "clusterns",
        "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation",
        "Contrastive learning has been widely studied in sentence representation learning. However, in-batch "
        "samples are often simply treated as negative examples. We propose ClusterNS, which incorporates "
        "clustering information into contrastive learning for unsupervised sentence representation learning.",
        0.9,
        "",
    )
    d = _decide("What is ClusterNS?", [src])
    assert d.outcome == "answered"  # type: ignore[attr-defined]
    assert "We propose ClusterNS" in extractive_answer(d).split("[1]")[0]  # type: ignore[arg-type]


def test_a_one_paper_answer_adds_no_paper_sharing_only_a_word_with_the_question() -> None:
    """A question in other words shares a word or two with every paper on its topic, the lead included: "about as
    well as the lead" then admits them all, so a companion's sentence must also support the question on its own."""
    question = "a trick that makes text vectors isotropic after training"
    lead = Source(
        1, "whitening", "WhiteningBERT", "Producing sentence vectors is valuable. We study whitening.", 1.0, ""
    )
    topic = Source(2, "topic", "Sentence vectors", "Sentence vectors are compared with cosine similarity.", 0.95, "")
    spec = analyse(question)
    papers = gather(spec, [lead, topic])
    assert papers[1].best == papers[0].best > 0  # the same one-word overlap
    quoted = {
        floor: [
            p.source
            for p in decide(
                spec, papers, 0.5, 0.2, replace(TH, companion_ratio_one=0.7, companion_support_one=floor)
            ).evidence
        ]
        for floor in (0.0, 0.3)
    }
    assert quoted == {0.0: [lead, topic], 0.3: [lead]}


BERT = Source(
    1,
    "bert",
    "BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
    "We introduce a new language representation model called BERT. BERT obtains new state-of-the-art results on "
    "eleven natural language processing tasks, including pushing the GLUE score to 80.5%.",
    1.0,
    "",
)


def test_the_rest_of_a_named_question_is_what_its_names_leave() -> None:
    assert rest_of_question("What colour is BERT's sweater on Sesame Street?", ["BERT"]) == (
        "What colour is sweater on Sesame Street?"
    )
    assert rest_of_question("What is ClusterNS?", ["ClusterNS"]) is None  # nothing is left to judge
    assert rest_of_question("What problem does AnglE address?", ["AnglE"]) is None  # two words: noise


def _decide_rest(question: str, sources: list[Source], rest_margin: float | None) -> Decision:
    spec = analyse(question)
    return decide(spec, gather(spec, sources), 0.3, 0.25, TH, rest_margin=rest_margin)


def test_an_everyday_question_around_a_technical_name_is_refused() -> None:
    question = "What colour is BERT's sweater on Sesame Street?"
    d = _decide_rest(question, [BERT, OTHER], rest_margin=-0.1)
    assert d.outcome == "refused" and "apart from BERT" in d.reason
    # The name alone lets it through the topicality check (min_margin_named): the rest's margin is what refuses it.
    assert _decide_rest(question, [BERT, OTHER], rest_margin=None).outcome != "refused"
    assert _decide_rest(question, [BERT, OTHER], rest_margin=0.1).outcome != "refused"


def test_a_question_about_the_named_model_is_kept_when_an_abstract_supports_its_rest() -> None:
    # However everyday the rest reads to the embedding, a sentence naming BERT states a GLUE score: kept.
    d = _decide_rest("What GLUE score does BERT push the benchmark to?", [BERT, OTHER], rest_margin=-0.1)
    assert d.outcome == "answered"
    assert d.evidence[0].rest >= TH.min_rest_support
