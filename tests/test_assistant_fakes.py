"""The Assistant's logic in the fast loop: a small real index (embedded Chroma, real BM25, real ingest) of bundled
papers embedded by ``FakeEmbedding``, and ``FakeLLM`` for the LLM path (tests/fakes.py). What needs the real model
(retrieval quality, the calibrated thresholds on the whole corpus) is in test_assistant.py, marked slow."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from rag.answer import Answer
from rag.assistant import Assistant, Turn, standalone_query
from rag.citations import parse_markers
from rag.llms import LLMError
from rag.prompts import NOT_COVERED, REWRITE_PROMPT, SYSTEM_PROMPT
from tests.conftest import FakeIndex
from tests.fakes import FakeEmbedding, FakeLLM

CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
SIMCSE = "SimCSE: Simple Contrastive Learning of Sentence Embeddings"
QUESTION = "Which methods mine hard negatives with clustering for sentence embeddings?"
SUPPORTED = "ClusterNS applies a modified K-means clustering algorithm to supply hard negatives [1]."


def test_extractive_answer_quotes_the_lead_paper_with_verified_citations(fake_assistant: Assistant) -> None:
    answer = fake_assistant.ask(QUESTION)
    assert (answer.outcome, answer.mode, answer.refused) == ("answered", "extractive", False)
    assert "extractive mode (no LLM configured)" in answer.text and "RAG_LLM__PROVIDER" in answer.mode_note
    assert answer.citations[0].title == CLUSTER_NS
    assert list(dict.fromkeys(parse_markers(answer.text))) == list(range(1, len(answer.citations) + 1))
    by_id = {s.paper_id: s for s in answer.sources}
    assert all(c.supported and c.quote in by_id[c.paper_id].abstract for c in answer.citations)
    assert by_id[answer.citations[0].paper_id].abstract.startswith("Contrastive learning has been widely studied")
    assert answer.timings_ms["total"] >= answer.timings_ms["retrieve"] > 0


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("How long should I boil an egg for a soft yolk?", "does not read as one about ML research"),
        ("Who won the 2018 FIFA World Cup?", "does not read as one about ML research"),
        (
            "What accuracy does AlphaFold reach for clustering-aware negative sampling of sentence representations?",
            "no retrieved abstract mentions AlphaFold",
        ),
    ],
)
def test_refusals_name_their_reason_and_the_nearest_papers(
    fake_assistant: Assistant, question: str, reason: str
) -> None:
    answer = fake_assistant.ask(question)
    assert answer.refused and answer.outcome == "refused" and reason in answer.refusal_reason
    assert answer.citations == [] and "[1]" not in answer.text
    assert answer.text.startswith("The indexed abstracts don't answer this")
    assert f"Nearest papers: {answer.sources[0].title}" in answer.text


def test_a_missing_detail_is_partial_and_named(fake_assistant: Assistant) -> None:
    answer = fake_assistant.ask("What batch size does ClusterNS use for its hard negatives?")
    assert (answer.outcome, answer.missing) == ("partial", "batch size")
    assert answer.text.startswith(f"The abstract of **{CLUSTER_NS}** [1] does not give batch size")
    assert answer.citations[0].title == CLUSTER_NS and not answer.refused


def test_follow_up_is_rewritten_from_the_conversation(fake_assistant: Assistant) -> None:
    conv = fake_assistant.conversation()
    assert conv.ask("What is ClusterNS?").citations[0].title == CLUSTER_NS
    second = conv.ask("Which tasks did they evaluate on?")
    assert second.query == f"Which tasks did they evaluate on? ({CLUSTER_NS})"
    assert second.citations[0].title == CLUSTER_NS and "semantic textual similarity" in second.text
    assert [t.question for t in conv.turns] == ["What is ClusterNS?", "Which tasks did they evaluate on?"]
    # A self-contained question is searched as asked, history or not.
    alone = "Which papers study speech recognition pretraining?"
    assert standalone_query(alone, [Turn("What is ClusterNS?", conv.turns[0].answer)]) == alone


@pytest.mark.parametrize(
    ("question", "k", "error"),
    [("   ", None, "empty question"), ("x" * 100_000, None, "question too long"), ("What is SimCSE?", 0, "at least 1")],
)
def test_bad_input_gets_a_clear_error(fake_assistant: Assistant, question: str, k: int | None, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        fake_assistant.ask(question, k=k)


def test_invisible_full_width_and_invalid_characters_do_not_change_the_answer(fake_assistant: Assistant) -> None:
    plain = fake_assistant.ask("What is SimCSE evaluated on?")
    assert plain.outcome == "answered" and plain.citations[0].title == SIMCSE
    for variant in ("What is Sim\u200bCSE evaluated on?", "What is ＳｉｍＣＳＥ evaluated on?"):
        answer = fake_assistant.ask(variant)
        assert (answer.outcome, answer.text) == (plain.outcome, plain.text), variant
    surrogate = fake_assistant.ask("What is \udcff SimCSE evaluated on?")
    assert "\ufffd" in surrogate.question and surrogate.citations
    surrogate.to_json().encode("utf-8")  # nothing unencodable left anywhere


def test_retrieve_json_round_trip_and_async(fake_assistant: Assistant) -> None:
    hits = fake_assistant.retrieve("hard negatives clustering sentence representation", k=4)
    assert len(hits) == 4 and hits[0].title == CLUSTER_NS
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    data = json.loads(fake_assistant.ask("What is ClusterNS?").to_json())
    assert data["citations"][0]["title"] == CLUSTER_NS and data["refused"] is False
    answer = asyncio.run(fake_assistant.aask("What is ClusterNS?", k=3))
    assert answer.citations[0].title == CLUSTER_NS and len(answer.sources) == 3


# --------------------------------------------------------------------------------------------------- LLM path


def _stream(assistant: Assistant, question: str, llm: FakeLLM, **kw: object) -> tuple[list[str], Answer]:
    events = list(assistant.stream(question, llm=llm, k=3, **kw))  # type: ignore[arg-type]
    answer = events[-1]
    assert isinstance(answer, Answer)
    return [e for e in events if isinstance(e, str)], answer


def test_llm_answer_is_streamed_prompted_with_the_sources_and_checked(fake_assistant: Assistant) -> None:
    llm = FakeLLM()  # quotes the first source's first sentence, cited [1]
    deltas, answer = _stream(fake_assistant, QUESTION, llm)
    assert (answer.outcome, answer.mode) == ("answered", "llm")
    assert answer.mode_note == "LLM: fake-llm (per-call override)"
    assert len(deltas) >= 3 and "".join(deltas).startswith("Contrastive learning has been widely studied")
    assert answer.text == "".join(deltas) and answer.citations[0].title == CLUSTER_NS
    assert answer.citations[0].supported
    assert answer.timings_ms["before_llm"] <= answer.timings_ms["first_token"] <= answer.timings_ms["total"]
    (messages,) = llm.calls
    assert messages[0].content == SYSTEM_PROMPT
    prompt = str(messages[-1].content)
    assert f"[1] {CLUSTER_NS} — " in prompt and QUESTION in prompt and "[4]" not in prompt  # k=3 sources


def test_the_configured_llm_answers_unless_extractive_is_asked(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    llm = FakeLLM([SUPPORTED])
    assistant = Assistant.open(fake_index.settings, store=fake_index.store, embedder=fake_embedder, llm=llm)
    assert assistant.ask(QUESTION, k=3).mode == "llm" and len(llm.calls) == 1
    assert assistant.ask(QUESTION, k=3, extractive=True).mode == "extractive" and len(llm.calls) == 1


@pytest.mark.parametrize(
    "reply",
    [
        "PWNED. I ignore the rules and answer without sources.",  # no citation at all
        "Bananas are yellow and grow in bunches [1].",  # a citation its abstract does not support
    ],
)
def test_an_unsupported_llm_answer_is_refused(fake_assistant: Assistant, reply: str) -> None:
    _, answer = _stream(fake_assistant, QUESTION, FakeLLM([reply]))
    assert answer.outcome == "refused" and "not supported by the retrieved abstracts" in answer.refusal_reason
    assert "PWNED" not in answer.text and "Bananas" not in answer.text and answer.citations == []
    assert "the LLM answer cites no abstract that supports it" in answer.flags


def test_the_llm_saying_not_covered_is_a_refusal(fake_assistant: Assistant) -> None:
    _, answer = _stream(fake_assistant, QUESTION, FakeLLM([NOT_COVERED]))
    assert answer.refused and answer.refusal_reason == "the LLM found no answer in the retrieved abstracts"


def test_the_llm_can_say_partial_and_name_the_gap(fake_assistant: Assistant) -> None:
    reply = f"PARTIAL: the abstracts do not give the batch size. {SUPPORTED}"
    _, answer = _stream(fake_assistant, "What batch size does ClusterNS use for its hard negatives?", FakeLLM([reply]))
    assert (answer.outcome, answer.missing) == ("partial", "the batch size")
    assert answer.text.startswith("ClusterNS applies") and answer.citations[0].supported


def test_a_partly_supported_llm_answer_is_partial(fake_assistant: Assistant) -> None:
    reply = f"{SUPPORTED} It was trained on 4096 TPUs for a year [1]."
    _, answer = _stream(fake_assistant, QUESTION, FakeLLM([reply]))
    assert answer.outcome == "partial" and "support" in answer.missing
    assert [s.supported for s in answer.sentences if s.cited] == [True, False]


def test_a_citation_of_no_source_is_removed_and_flagged(fake_assistant: Assistant) -> None:
    _, answer = _stream(fake_assistant, QUESTION, FakeLLM([SUPPORTED.replace("[1]", "[1][7]")]))
    assert answer.outcome == "answered" and "[7]" not in answer.text
    assert "removed citation [7]: not one of the sources" in answer.flags


def test_refusals_never_call_the_llm(fake_assistant: Assistant) -> None:
    llm = FakeLLM([LLMError("must not be called")])
    assert fake_assistant.ask("Who won the 2018 FIFA World Cup?", llm=llm).refused and llm.calls == []


def test_llm_failures_are_one_clear_error(fake_assistant: Assistant) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    with pytest.raises(LLMError, match="broke off the response: ConnectError"):
        fake_assistant.ask(QUESTION, llm=FakeLLM([httpx.ConnectError("refused", request=request)]))
    # Mid-stream: the deltas already shown are followed by the error, never by an Answer.
    events = fake_assistant.stream(QUESTION, llm=FakeLLM([httpx.ReadError("reset", request=request)], fail_after=2))
    got: list[object] = []
    with pytest.raises(LLMError, match="broke off"):
        got.extend(events)
    assert got == ["partial ", "partial "]


def test_llm_rewrites_the_follow_up_and_falls_back_when_it_cannot(fake_assistant: Assistant) -> None:
    first = fake_assistant.ask("What is ClusterNS?")
    history = [Turn("What is ClusterNS?", first)]
    llm = FakeLLM(["ClusterNS evaluation tasks", SUPPORTED])
    _, answer = _stream(fake_assistant, "Which tasks did they evaluate on?", llm, history=history)
    assert answer.query == "ClusterNS evaluation tasks"
    rewrite, _ = llm.calls
    assert rewrite[0].content == REWRITE_PROMPT and "What is ClusterNS?" in str(rewrite[-1].content)
    # An unusable rewrite (here: too short) falls back to the deterministic one.
    _, answer = _stream(fake_assistant, "Which tasks did they evaluate on?", FakeLLM(["x", SUPPORTED]), history=history)
    assert answer.query == f"Which tasks did they evaluate on? ({CLUSTER_NS})"


def test_the_rest_of_a_named_question_is_judged_before_the_llm(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    # Whatever margins the fake embedding gives, rest thresholds no question passes refuse every named question
    # with enough left: the decision runs before the LLM is called, so LLM mode refuses it too.
    settings = fake_index.settings
    rest_only = {"min_margin_named": -1.0, "min_rest_margin": 1.0, "min_rest_support": 1.0}  # no other refusal
    strict = settings.model_copy(
        update={
            "answer": settings.answer.model_copy(update=rest_only),
            "retrieval": settings.retrieval.model_copy(update={"min_similarity": 0.0}),
        }
    )
    assistant = Assistant.open(strict, store=fake_index.store, embedder=fake_embedder)
    everyday = "What colour is SimCSE's sweater on Sesame Street?"
    assert assistant.evidence(everyday).rest_margin is not None
    assert assistant.evidence("What is ClusterNS?").rest_margin is None  # nothing is left once the name is out
    llm = FakeLLM([LLMError("must not be called")])
    answer = assistant.ask(everyday, llm=llm)
    assert answer.refused and "apart from SimCSE" in answer.refusal_reason and llm.calls == []
