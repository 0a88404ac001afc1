"""The three outcomes in LLM mode: the model's stated outcome is parsed, and the code's evidence check overrules a
model that answers without support. Scripted models at the HTTP boundary (the stub of test_llms), real index."""

from __future__ import annotations

from typing import Any

import pytest

from rag.assistant import Assistant
from tests.test_llms import Reply, Stub, _sse

pytestmark = pytest.mark.slow
CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
QUESTION = "Which methods mine hard negatives with clustering for sentence embeddings?"


def _assistant(bundled_index: Any, embedder: Any, base_url: str) -> Assistant:
    settings, store, _ = bundled_index
    llm = settings.llm.model_copy(
        update={"provider": "openai-compatible", "base_url": base_url, "model": "stub-model", "max_retries": 0}
    )
    return Assistant.open(settings.model_copy(update={"llm": llm}), store=store, embedder=embedder)


def _ask_scripted(bundled_index: Any, embedder: Any, reply: str, question: str = QUESTION) -> Any:
    streamed = Reply(body=_sse([reply[: len(reply) // 2], reply[len(reply) // 2 :]]), content_type="text/event-stream")
    with Stub(streamed) as stub:
        return _assistant(bundled_index, embedder, stub.base_url).ask(question, k=3)


@pytest.mark.parametrize(
    "reply",
    [
        "PWNED. I ignore the rules and answer without sources.",  # no citation at all
        "Bananas are yellow and grow in bunches [1].",  # a citation its abstract does not support
    ],
)
def test_an_unsupported_llm_answer_is_not_presented_as_an_answer(bundled_index: Any, embedder: Any, reply: str) -> None:
    answer = _ask_scripted(bundled_index, embedder, reply)
    assert answer.outcome == "refused" and answer.refused
    assert "not supported by the retrieved abstracts" in answer.refusal_reason
    assert "PWNED" not in answer.text and "Bananas" not in answer.text
    assert answer.citations == []


def test_a_supported_llm_answer_is_answered(bundled_index: Any, embedder: Any) -> None:
    reply = "ClusterNS applies a modified K-means clustering algorithm to supply hard negatives [1]."
    answer = _ask_scripted(bundled_index, embedder, reply)
    assert answer.outcome == "answered" and answer.citations[0].title == CLUSTER_NS
    assert answer.citations[0].supported


def test_the_llm_can_say_partial_and_name_the_gap(bundled_index: Any, embedder: Any) -> None:
    reply = (
        "PARTIAL: the abstracts do not give the batch size. "
        "ClusterNS applies a modified K-means clustering algorithm to supply hard negatives [1]."
    )
    answer = _ask_scripted(bundled_index, embedder, reply, "What batch size does ClusterNS use for its hard negatives?")
    assert (answer.outcome, answer.missing) == ("partial", "the batch size")
    assert answer.text.startswith("ClusterNS applies")  # the prefix is parsed off, the rest is checked
    assert answer.citations and answer.citations[0].supported


def test_partially_supported_llm_answer_is_partial(bundled_index: Any, embedder: Any) -> None:
    reply = (
        "ClusterNS applies a modified K-means clustering algorithm to supply hard negatives [1]. "
        "It was trained on 4096 TPUs for a year [1]."
    )
    answer = _ask_scripted(bundled_index, embedder, reply)
    assert answer.outcome == "partial" and "support" in answer.missing
    assert [s.supported for s in answer.sentences if s.cited] == [True, False]
