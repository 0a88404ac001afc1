"""The optional query-rewriting stage (rag.rewrite): off by default; HyDE searches the mean of the question's and a
hypothetical abstract's vectors, multi-query fuses the question's and its rephrasings' rankings by reciprocal rank;
a stage that fails searches the question as asked and says so in the answer's flags.

- fast: pure parsing, both modes with the in-process ``FakeLLM`` on the fake index, faults at the HTTP boundary
  (a dead port, a stdlib stub answering HTTP 500 or garbage);
- ``slow`` + ``llm_server``: both modes against the real llama.cpp server with the bundled SmolLM2.
"""

from __future__ import annotations

import re

import pytest

from rag.assistant import Assistant
from rag.fusion import fold_to_papers, fuse_rrf
from rag.llms import LLMError, build_llm
from rag.protocols import ChatModel
from rag.retrieve import Retriever
from rag.rewrite import (
    MIN_PASSAGE_WORDS,
    PASSAGE_CHARS,
    HydeRewriter,
    MultiQueryRewriter,
    build_rewriter,
    parse_passage,
    parse_queries,
)
from rag.settings import LLMSettings, RewriteSettings, Settings
from tests.conftest import FakeIndex, free_port
from tests.fakes import FakeEmbedding, FakeLLM
from tests.test_llms import BROKEN_REPLIES, Reply, Stub, _completion

QUESTION = "Which methods mine hard negatives with clustering for sentence embeddings?"


def _retriever(index: FakeIndex, embedder: FakeEmbedding, llm: ChatModel | None = None, **rewrite: object) -> Retriever:
    cfg = RewriteSettings(**rewrite)  # type: ignore[arg-type]
    return Retriever.open(index.settings, index.store, embedder, rewriter=build_rewriter(cfg, llm))


def _target(plain: Retriever) -> tuple[str, str]:
    """A paper the question does not lead to (DiffRoll) and its best chunk: the passage of a perfect HyDE."""
    hit = plain.retrieve("DiffRoll diffusion music transcription", k=1, mode="bm25")[0]
    assert hit.title.startswith("DiffRoll")
    return hit.paper_id, hit.best_chunk


# --------------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        # SmolLM2-135M's reply to a dev question, cut short by max_tokens: kept as it is.
        (
            "The goal of this research is to develop a zero-shot vision-language model that can be trained on "
            "unlabeled data without any labels at all.",
            "The goal of this research is to develop a zero-shot vision-language model that can be trained on "
            "unlabeled data without any labels at all.",
        ),
        (
            "Abstract: We cluster sentence embeddings\nto mine hard negatives.",
            "We cluster sentence embeddings to mine hard negatives.",
        ),
        (
            "**Title:** ClusterNS\n\n**Abstract:** We mine hard negatives with k-means.",
            "We mine hard negatives with k-means.",
        ),
        (
            "<question>We mine hard negatives with k-means clustering.</question>",
            "We mine hard negatives with k-means clustering.",
        ),
        ("Sure, here it is.", ""),  # fewer than MIN_PASSAGE_WORDS words: nothing to search with
        ("   ", ""),
    ],
    ids=["smollm2", "label", "title-line", "tags", "too-short", "blank"],
)
def test_parse_passage(reply: str, expected: str) -> None:
    assert parse_passage(reply) == expected


def test_parse_passage_is_cut_at_a_word() -> None:
    passage = parse_passage("word " * 1000)
    assert len(passage) <= PASSAGE_CHARS and passage.endswith("word") and MIN_PASSAGE_WORDS == 5


@pytest.mark.parametrize(
    ("reply", "n", "expected"),
    [
        (
            "1. clustering hard negatives\n2. k-means negative sampling",
            3,
            ["clustering hard negatives", "k-means negative sampling"],
        ),
        (
            'Here are 3 search queries:\n- "hard negative mining"\n* negatives from clusters',
            3,
            ["hard negative mining", "negatives from clusters"],
        ),
        (
            "Query 1: hard negative mining\nQuery 2: hard negative mining\nQuery 3: negative sampling",
            3,
            ["hard negative mining", "negative sampling"],
        ),
        # A small model echoing the question (any case, punctuation) and the prompt's tags gives nothing new.
        (f"<query>\n{QUESTION.upper()}\n</query>", 3, []),
        ("a b c\nd e f\ng h i", 2, ["a b c", "d e f"]),
        ("negatives\n\nclustering", 3, []),  # one-word lines
    ],
    ids=["numbered", "header-bullets-quotes", "labels-repeats", "echo", "at-most-n", "one-word"],
)
def test_parse_queries(reply: str, n: int, expected: list[str]) -> None:
    assert parse_queries(reply, QUESTION, n) == expected


def test_off_by_default_and_needs_an_llm() -> None:
    assert Settings().rewrite.mode == "none"
    assert build_rewriter(RewriteSettings()) is None
    for mode in ("hyde", "multi-query"):
        with pytest.raises(ValueError, match=f"RAG_REWRITE__MODE={mode} needs an LLM: set RAG_LLM__PROVIDER"):
            build_rewriter(RewriteSettings(mode=mode))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queries"):
        RewriteSettings(mode="multi-query", queries=0)


# --------------------------------------------------------------------------------------------------- the two modes


def test_hyde_searches_the_passage_and_keeps_the_questions_similarity(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    plain = _retriever(fake_index, fake_embedder)
    target, passage = _target(plain)
    before = [h.paper_id for h in plain.retrieve(QUESTION, k=40, mode="dense")]
    llm = FakeLLM([passage])
    found = _retriever(fake_index, fake_embedder, llm, mode="hyde").search(QUESTION, k=6, mode="dense")
    assert before.index(target) > 5 and found.hits[0].paper_id == target  # the passage's paper now leads
    assert found.notes == () and found.rewrite_ms is not None
    # dense_score stays the question's own similarity: the refusal threshold was chosen on it.
    question_scores = {h.paper_id: h.dense_score for h in plain.retrieve(QUESTION, k=40, mode="dense")}
    assert [h.dense_score for h in found.hits] == [question_scores[h.paper_id] for h in found.hits]
    prompt = str(llm.calls[0][-1].content)
    assert f"<question>\n{QUESTION}\n</question>" in prompt and prompt.endswith("Abstract:")


@pytest.mark.parametrize(("hyde_bm25", "moves"), [("question", False), ("question+passage", True)])
def test_hyde_bm25_side_searches_what_the_setting_says(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, hyde_bm25: str, moves: bool
) -> None:
    plain = _retriever(fake_index, fake_embedder)
    target, passage = _target(plain)
    bm25 = [h.paper_id for h in plain.retrieve(QUESTION, k=6, mode="bm25")]
    hyde = _retriever(fake_index, fake_embedder, FakeLLM([passage]), mode="hyde", hyde_bm25=hyde_bm25)
    found = [h.paper_id for h in hyde.retrieve(QUESTION, k=6, mode="bm25")]
    assert (found[0] == target) is moves and (found == bm25) is not moves


def test_multi_query_fuses_the_question_and_its_rephrasings(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    plain = _retriever(fake_index, fake_embedder)
    rephrasings = ["diffusion models for piano music transcription", "real-time object detection YOLO"]
    llm = FakeLLM(["Here are 2 search queries:\n" + "\n".join(f"{i}. {q}" for i, q in enumerate(rephrasings, 1))])
    found = _retriever(fake_index, fake_embedder, llm, mode="multi-query", queries=2).search(QUESTION, 6, "dense")
    n = plain.candidates  # each search fetches max(candidates, 3 k) chunks
    expected = fold_to_papers(fuse_rrf([plain.dense(q, n) for q in [QUESTION, *rephrasings]]))
    assert [h.paper_id for h in found.hits] == [h.paper_id for h in expected[:6]]
    without_question = fold_to_papers(fuse_rrf([plain.dense(q, n) for q in rephrasings]))
    assert [h.paper_id for h in expected[:6]] != [h.paper_id for h in without_question[:6]]  # the question counts
    assert any(h.title.startswith("DiffRoll") for h in found.hits)  # and so do the rephrasings
    assert found.notes == () and "2 search queries, one per line:" in str(llm.calls[0][-1].content)


@pytest.mark.parametrize(
    ("mode", "replies", "reason"),
    [
        ("hyde", [RuntimeError("CUDA out of memory")], r"\(RuntimeError: CUDA out of memory\)"),
        ("hyde", ["Sure."], r"its reply holds no passage of 5\+ words: 'Sure.'"),
        ("multi-query", [QUESTION], r"its reply holds no rephrasing of the question"),
        (
            "multi-query",
            [LLMError("the LLM at http://x/v1 did not answer within 5 s (1 attempt): timed out")],
            r"\(the LLM at http://x/v1 did not answer within 5 s \(1 attempt\): timed out\)",
        ),
    ],
    ids=["raises", "hyde-garbage", "echo", "llm-error"],
)
def test_failing_rewrite_searches_the_question_with_a_flag(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, mode: str, replies: list[object], reason: str
) -> None:
    plain = [h.paper_id for h in _retriever(fake_index, fake_embedder).retrieve(QUESTION, k=6)]
    retriever = _retriever(fake_index, fake_embedder, FakeLLM(replies * 2), mode=mode)  # type: ignore[arg-type]
    found = retriever.search(QUESTION, k=6)
    assert [h.paper_id for h in found.hits] == plain
    (note,) = found.notes
    name = "HyDE" if mode == "hyde" else "multi-query"
    assert note.startswith(f"query rewrite ({name} with LLM fake-llm) failed (") and re.search(reason, note), note
    assert note.endswith("); searched the question as asked") and "\n" not in note
    answer = Assistant(fake_index.settings, retriever).ask(QUESTION, extractive=True)
    assert answer.flags[0] == note and answer.outcome == "answered"


def test_assistant_open_builds_the_stage_from_settings(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    """Settings alone switch it on, in every entry point: Assistant.open builds it around the configured LLM."""
    llm = FakeLLM(["contrastive sentence embeddings with k-means negatives"])
    settings = fake_index.settings.model_copy(update={"rewrite": RewriteSettings(mode="multi-query", queries=1)})
    assistant = Assistant.open(settings, store=fake_index.store, embedder=fake_embedder, llm=llm)
    assert isinstance(assistant.retriever.rewriter, MultiQueryRewriter)
    answer = assistant.ask(QUESTION)
    assert "rewrite" in answer.timings_ms and answer.flags == [] and answer.mode == "llm"
    assert "1 search queries, one per line:" in str(llm.calls[0][-1].content)  # the stage's call came first
    assert answer.citations[0].title.startswith("Clustering-Aware Negative Sampling")


# --------------------------------------------------------------------------------------------------- HTTP faults


def _llm_retriever(index: FakeIndex, embedder: FakeEmbedding, base_url: str, mode: str, **llm: object) -> Retriever:
    cfg = LLMSettings(provider="openai-compatible", base_url=base_url, model="stub-model", **llm)  # type: ignore[arg-type]
    return _retriever(index, embedder, build_llm(cfg), mode=mode)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [pytest.param(Reply(body=_completion("OK.")), r"its reply holds no passage", id="prose"), *BROKEN_REPLIES],
)
@pytest.mark.usefixtures("fast_retries")
def test_http_faults_fall_back(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, reply: Reply, expected: str
) -> None:
    plain = [h.paper_id for h in _retriever(fake_index, fake_embedder).retrieve(QUESTION, k=6)]
    with Stub(reply) as stub:
        found = _llm_retriever(fake_index, fake_embedder, stub.base_url, "hyde", max_retries=0).search(QUESTION, k=6)
    assert [h.paper_id for h in found.hits] == plain and len(stub.requests) == 1
    (note,) = found.notes
    assert note.startswith("query rewrite (HyDE with LLM stub-model) failed (") and re.search(expected, note), note


@pytest.mark.usefixtures("fast_retries")
def test_dead_port_falls_back(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    retriever = _llm_retriever(fake_index, fake_embedder, dead, "multi-query", max_retries=1, timeout=2.0)
    found = retriever.search(QUESTION, k=6)
    (note,) = found.notes
    assert f"the LLM at {dead} is unreachable (2 attempts)" in note and len(found.hits) == 6


# --------------------------------------------------------------------------------------------------- real server


@pytest.mark.slow
@pytest.mark.llm_server
def test_rewrite_against_the_real_server(
    llama_server: str, fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    llm_cfg = LLMSettings(
        provider="openai-compatible", base_url=llama_server, model="smollm2", max_tokens=96, timeout=600, max_retries=0
    )
    settings = fake_index.settings.model_copy(update={"llm": llm_cfg, "rewrite": RewriteSettings(mode="hyde")})
    assistant = Assistant.open(settings, store=fake_index.store, embedder=fake_embedder)
    hyde = assistant.retriever.rewriter
    assert isinstance(hyde, HydeRewriter)
    # SmolLM2-135M writes an abstract-like passage (the plumbing works end to end); how good it is is its business.
    (probe,) = hyde.probes(QUESTION)
    assert probe.query == QUESTION and len(probe.passage.split()) >= MIN_PASSAGE_WORDS
    answer = assistant.ask(QUESTION, extractive=True)
    assert answer.flags == [] and "rewrite" in answer.timings_ms and answer.outcome != "refused"
    # Multi-query through the same server: SmolLM2 often echoes the question, which parses to nothing; either way
    # the reply came back over HTTP and was parsed (no LLMError), and the question's own search is there.
    multi = build_rewriter(RewriteSettings(mode="multi-query"), assistant.llm)
    retriever = Retriever.open(settings, fake_index.store, fake_embedder, rewriter=multi)
    found = retriever.search(QUESTION, k=6)
    assert found.notes == () or "its reply holds no rephrasing" in found.notes[0], found.notes
    assert found.rewrite_ms is not None and len(found.hits) == 6
