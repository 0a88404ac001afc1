"""The parts behind own-words retrieval and the outcome calibration: the BM25 attainable score (real bm25s), the
own-words protocol checker, the everyday-domain margin (a deterministic fake embedder) and the threshold search."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evals.calibrate_outcomes import Case, choose, citation_breakdown, score
from evals.data import EvalQuestion
from evals.protocol import ProtocolChecker
from rag.answerability import Evidence, Thresholds, gather
from rag.lexical import LexicalIndex, tokenize_pages
from rag.question import analyse
from rag.settings import Settings
from rag.topicality import EVERYDAY_DOMAINS, EVERYDAY_QUESTIONS, Topicality
from rag.types import Source


def test_attainable_is_the_best_score_any_chunk_could_reach(tmp_path: Path) -> None:
    texts = [
        "dropout noise makes two views of one sentence",
        "graph neural networks for molecules",
        "sentence sentence embeddings embeddings",
    ]
    index = LexicalIndex.build(tmp_path / "bm25", *tokenize_pages([(["a#s#0", "b#s#0", "c#s#0"], texts)]))
    query = "sentence embeddings with dropout"
    _, top_score = index.search(query, k=1)[0]
    attainable = index.attainable(query)
    assert top_score < attainable  # no chunk holds every query term at its best
    per_term = sum(index.search(term, k=1)[0][1] for term in ("sentence", "embeddings", "dropout"))
    assert attainable == pytest.approx(per_term)
    assert index.attainable("quantum chromodynamics") == 0.0  # no known term


TITLE = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
ABSTRACT = "We apply a modified K-means clustering algorithm to supply hard negatives for contrastive learning."
OTHERS = {f"p{i}": (f"Learning paper {i}", f"We propose a learning method number {i} for data.") for i in range(120)}


@pytest.fixture
def checker() -> ProtocolChecker:
    return ProtocolChecker({"clusterns": (TITLE, ABSTRACT), **OTHERS})


@pytest.mark.parametrize(
    ("question", "rule"),
    [
        ("which papers get hard negatives from clustering for sentence vectors?", "distinctive title words"),
        ("does modified k-means supply hard negatives in contrastive setups?", "rare abstract words"),
        ("grouping tricks?", "shorter than 6 words"),
    ],
)
def test_protocol_flags_reused_wording(checker: ProtocolChecker, question: str, rule: str) -> None:
    row: dict[str, object] = {"id": "q", "type": "own_words", "question": question, "gold": ["clusterns"]}
    assert any(rule in v.rule for v in checker.check(row))


def test_protocol_passes_own_words_and_slices_them(checker: ProtocolChecker) -> None:
    question = "is there a way to pick tough counter-examples by grouping the data first?"
    row: dict[str, object] = {"id": "q", "type": "own_words", "question": question, "gold": ["clusterns"]}
    row["split"] = "dev"
    assert checker.check(row) == []
    assert checker.vocabulary_slice(question, ["clusterns"]) == "no vocabulary"
    test_row = {**row, "id": "t", "question": question + " again", "split": "test"}
    assert any("both the dev and the test split" in v.rule for v in checker.check_all([row, test_row]))


class FakeEmbedder:
    """Deterministic 3-d vectors: ML words point one way, kitchen words another."""

    def get_query_embedding(self, query: str) -> list[float]:
        q = query.lower()
        return [
            1.0 + sum(w in q for w in ("neural", "learning", "model")),
            1.0 + sum(w in q for w in ("cooking", "recipe", "bread")),
            0.1,
        ]


def test_background_is_the_closest_everyday_domain() -> None:
    topicality = Topicality(FakeEmbedder(), prototypes=("cooking recipes and bread", "neural learning model"))
    kitchen = topicality.background(FakeEmbedder().get_query_embedding("a bread recipe"))
    assert kitchen == pytest.approx(1.0, abs=0.01)
    assert topicality.vectors().shape == (2, 3)


class CountingEmbedder(FakeEmbedder):
    def __init__(self, flip: bool = False) -> None:
        self.calls = 0
        self.flip = flip  # another model: the same texts, other vectors

    def get_query_embedding(self, query: str) -> list[float]:
        self.calls += 1
        v = super().get_query_embedding(query)
        return v[::-1] if self.flip else v


PROTOTYPES = ("cooking recipes and bread", "neural learning model", "a bread recipe for Sunday")


def test_the_prototype_vectors_are_cached_per_model(tmp_path: Path) -> None:
    first = CountingEmbedder()
    expected = Topicality(first, PROTOTYPES, cache_dir=tmp_path).vectors()
    assert first.calls == 1 + len(PROTOTYPES) and len(list(tmp_path.glob("everyday-*.npy"))) == 1
    again = CountingEmbedder()
    assert Topicality(again, PROTOTYPES, cache_dir=tmp_path).vectors() == pytest.approx(expected)
    assert again.calls == 1  # only the check of the first prototype
    # Another model with the same prototypes: its own vectors, never the cached ones (which it then replaces).
    other = CountingEmbedder(flip=True)
    got = Topicality(other, PROTOTYPES, cache_dir=tmp_path).vectors()
    assert got == pytest.approx(Topicality(CountingEmbedder(flip=True), PROTOTYPES).vectors())
    assert got != pytest.approx(expected)


def test_a_damaged_prototype_cache_is_embedded_again(tmp_path: Path) -> None:
    Topicality(CountingEmbedder(), PROTOTYPES, cache_dir=tmp_path).vectors()
    (cached,) = tmp_path.glob("everyday-*.npy")
    cached.write_bytes(cached.read_bytes()[:40])  # a process killed while writing could not leave this, a disk can
    fresh = CountingEmbedder()
    assert Topicality(fresh, PROTOTYPES, cache_dir=tmp_path).vectors().shape == (3, 3)
    assert fresh.calls == 1 + len(PROTOTYPES)
    assert Topicality(CountingEmbedder(), PROTOTYPES, cache_dir=tmp_path).vectors().shape == (3, 3)  # rewritten


def test_the_everyday_questions_ship_with_the_package() -> None:
    assert len(EVERYDAY_QUESTIONS) > 400 and len(set(EVERYDAY_QUESTIONS)) == len(EVERYDAY_QUESTIONS)
    assert Topicality(FakeEmbedder()).prototypes == EVERYDAY_DOMAINS + EVERYDAY_QUESTIONS


def _case(qid: str, qtype: str, question: str, source: Source, top: float, background: float) -> Case:
    q = EvalQuestion(qid, qtype, question, (source.paper_id,) if qtype == "fact" else (), "dev")  # type: ignore[arg-type]
    spec = analyse(question)
    return Case(q, Evidence(spec, (source,), tuple(gather(spec, [source])), top, background))


def _grid(**varied: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """A calibration grid of one point, these tests' fixed thresholds, but for the ``varied`` ones."""
    fixed = {
        "min_similarity": (0.2,),
        "min_margin": (0.0,),
        "min_margin_named": (-0.3,),
        "min_detail": (0.6,),
        "companion_ratio": (0.7,),
        "companion_ratio_one": (1.2,),
        "companion_score_ratio": (0.6,),
        "companion_support_one": (0.0,),
        "min_rest_margin": (-1.0,),
        "min_rest_support": (0.3,),
    }
    return fixed | varied


def test_calibration_picks_a_margin_that_refuses_the_everyday_question() -> None:
    src = Source(1, "clusterns", TITLE, ABSTRACT, 1.0, "")
    cases = [
        _case("a", "fact", "Which algorithm supplies the hard negatives for sentence representations?", src, 0.6, 0.2),
        _case("o", "unanswerable_offtopic", "How long do I bake sourdough bread?", src, 0.3, 0.45),
    ]
    default = Thresholds.from_settings(Settings())
    assert score(cases, default)["unanswerable_offtopic_refused"] == 1.0
    grid = _grid(min_margin=(-0.5, 0.0))
    chosen, metrics = choose(cases, grid)
    assert chosen.min_margin == 0.0 and metrics["false_refusals"] == 0.0


def test_calibration_picks_a_rest_margin_that_refuses_an_everyday_question_around_a_name() -> None:
    src = Source(1, "clusterns", "ClusterNS: " + TITLE, "ClusterNS " + ABSTRACT.removeprefix("We "), 1.0, "")
    named = _case("a", "fact", "Which algorithm does ClusterNS apply to supply the hard negatives?", src, 0.6, 0.2)
    everyday = _case(
        "o", "unanswerable_offtopic", "Which football club does ClusterNS support on weekends?", src, 0.4, 0.3
    )
    # Both pass the topicality margin thanks to the name; without it, the football question reads as everyday, and
    # so does the real one here (a low rest margin), which its sentence about the name's hard negatives keeps.
    cases = [
        replace(named, evidence=replace(named.evidence, rest_margin=-0.05)),
        replace(everyday, evidence=replace(everyday.evidence, rest_margin=-0.2)),
    ]
    grid = _grid(min_rest_margin=(-1.0, 0.0))
    chosen, metrics = choose(cases, grid)
    assert chosen.min_rest_margin == 0.0
    assert (metrics["unanswerable_offtopic_refused"], metrics["false_refusals"]) == (1.0, 0.0)


def test_calibration_picks_the_companion_setting_that_keeps_one_paper_answers_unpadded() -> None:
    lead = Source(1, "clusterns", TITLE, ABSTRACT, 10.0, "")
    # Shares the topic and the wording, but retrieval rates it far below the lead: padding for a one-paper question.
    runner_up = Source(
        2, "other", "Hard negatives", "We supply hard negatives for contrastive sentence learning.", 2.0, ""
    )
    question = "Which algorithm supplies the hard negatives for contrastive learning of sentence representations?"
    q = EvalQuestion("a", "fact", question, ("clusterns",), "dev")
    spec = analyse(question)
    cases = [Case(q, Evidence(spec, (lead, runner_up), tuple(gather(spec, [lead, runner_up])), 0.6, 0.2))]
    grid = _grid(
        min_similarity=(0.1, 0.2), companion_ratio=(0.5,), companion_ratio_one=(0.5,), companion_score_ratio=(0.1, 0.5)
    )
    chosen, metrics = choose(cases, grid)
    assert chosen.companion_score_ratio == 0.5 and metrics["cited_precision"] == 1.0
    assert score(cases, replace(chosen, companion_score_ratio=0.1))["cited_precision"] == 0.5


def test_calibration_chooses_a_support_floor_that_drops_a_one_word_companion() -> None:
    """Two settings of the outcome thresholds give the same outcomes here (the search scores them once); the
    citation search still reaches ``companion_support_one`` and keeps the floor that quotes the lead alone."""
    question = "a trick that makes text vectors isotropic after training"
    lead = Source(
        1, "whitening", "WhiteningBERT", "Producing sentence vectors is valuable. We study whitening.", 1.0, ""
    )
    topic = Source(2, "topic", "Sentence vectors", "Sentence vectors are compared with cosine similarity.", 0.95, "")
    spec = analyse(question)
    q = EvalQuestion("a", "own_words", question, ("whitening",), "dev")
    cases = [Case(q, Evidence(spec, (lead, topic), tuple(gather(spec, [lead, topic])), 0.6, 0.2))]
    grid = _grid(
        min_margin=(-0.1, 0.0),
        companion_ratio=(0.6,),
        companion_ratio_one=(0.7,),
        companion_score_ratio=(0.5,),
        companion_support_one=(0.0, 0.3),
    )
    chosen, metrics = choose(cases, grid)
    assert (chosen.min_margin, chosen.companion_support_one, metrics["cited_precision"]) == (-0.1, 0.3, 1.0)
    assert score(cases, replace(chosen, companion_support_one=0.0))["cited_precision"] == 0.5


def test_citation_breakdown_separates_own_words_and_shows_the_retrieval_bound() -> None:
    """An own-words question whose gold paper retrieval ranks second: the answer leads with the first (wrong)
    paper; the breakdown puts it apart from the question written from the abstract, next to its retrieval bound."""
    lead = Source(1, "clusterns", TITLE, ABSTRACT, 1.0, "")
    other = Source(2, "other", "Dropout views", "We make two views of a sentence with dropout noise.", 0.9, "")
    fact = "Which algorithm supplies the hard negatives for contrastive learning?"
    own = "sentence vectors where two noisy copies of a sentence are treated as a pair"
    questions = [
        EvalQuestion("f", "fact", fact, ("clusterns",), "dev"),
        EvalQuestion("o", "own_words", own, ("other",), "dev"),
    ]
    cases = []
    for q in questions:
        spec = analyse(q.question)
        cases.append(Case(q, Evidence(spec, (lead, other), tuple(gather(spec, [lead, other])), 0.6, 0.2)))
    th = Thresholds.from_settings(Settings())
    got = citation_breakdown(cases, th)
    assert got["written from the abstracts"] == {
        "questions": 1,
        "gold ranked first": 1.0,
        "gold retrieved": 1.0,
        "gold cited": 1.0,
        "cited precision": 1.0,
    }
    own_row = got["own words"]
    assert (own_row["gold ranked first"], own_row["gold retrieved"]) == (0.0, 1.0)
    assert own_row["cited precision"] < 1.0
