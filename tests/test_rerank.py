"""The optional rerank stage (rag.rerank): off by default, applied to the top N after fusion, and never failing a
question: a judge that raises, times out, is unreachable or answers garbage leaves the fused ranking and a flag.

- fast: pure parsing, the stage with in-process judges, faults at the HTTP boundary of an LLM judge (a dead port,
  a stdlib stub answering garbage) on the fake index;
- ``slow``: a real sentence-transformers ``CrossEncoder`` (a tiny random BERT built in a tmp dir, loaded through
  the setting) and (``llm_server``) the real llama.cpp server with the bundled SmolLM2 as the LLM judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from rag.assistant import Assistant
from rag.llms import build_llm
from rag.rerank import CrossEncoderReranker, LLMReranker, build_reranker, parse_ranking, rerank
from rag.retrieve import Retriever
from rag.settings import LLMSettings, RerankSettings, Settings
from tests.conftest import FakeIndex, free_port
from tests.fakes import FakeEmbedding, FakeLLM, write_tiny_cross_encoder
from tests.test_llms import BROKEN_REPLIES, Reply, Stub, _completion

QUESTION = "Which methods mine hard negatives with clustering for sentence embeddings?"


class Reverse:
    """A judge that prefers what fusion ranked last."""

    name = "reverse"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        self.calls.append(len(passages))
        return [float(i) for i in range(len(passages))]


class Broken:
    name = "broken"

    def __init__(self, result: object) -> None:
        self.result = result

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result  # type: ignore[return-value]


def _retriever(index: FakeIndex, embedder: FakeEmbedding, reranker: object, top_n: int = 20) -> Retriever:
    settings = index.settings.model_copy(update={"rerank": RerankSettings(top_n=top_n)})
    return Retriever.open(settings, index.store, embedder, reranker)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reply", "n", "expected"),
    [
        ("3, 1, 2", 3, [2, 0, 1]),
        ("[2] > [1]", 3, [1, 0]),
        ("Ranking: 2, 2, 9, 0, 1", 3, [1, 0]),
        ("The most relevant is passage 4.", 5, [3]),
        ("none of them", 3, []),
    ],
)
def test_parse_ranking(reply: str, n: int, expected: list[int]) -> None:
    assert parse_ranking(reply, n) == expected


def test_off_by_default() -> None:
    assert Settings().rerank.provider == "none"
    assert build_reranker(RerankSettings()) is None
    with pytest.raises(ValueError, match="RAG_RERANK__PROVIDER=llm needs an LLM"):
        build_reranker(RerankSettings(provider="llm"))
    with pytest.raises(ValueError, match="RAG_RERANK__MODEL_PATH is not set"):
        build_reranker(RerankSettings(provider="cross-encoder"))


def test_stage_reorders_only_the_top_n(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    plain = _retriever(fake_index, fake_embedder, None).search(QUESTION, k=10)
    judge = Reverse()
    found = _retriever(fake_index, fake_embedder, judge, top_n=5).search(QUESTION, k=10)
    assert judge.calls == [5] and found.notes == () and found.rerank_ms is not None
    fused = [h.paper_id for h in plain.hits]
    assert [h.paper_id for h in found.hits] == fused[:5][::-1] + fused[5:10]
    assert [h.rerank_score for h in found.hits[:5]] == [4.0, 3.0, 2.0, 1.0, 0.0]
    assert all(h.rerank_score is None for h in found.hits[5:])
    assert plain.rerank_ms is None and all(h.rerank_score is None for h in plain.hits)


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (RuntimeError("CUDA out of memory"), r"RuntimeError: CUDA out of memory"),
        (TimeoutError("read timed out"), r"TimeoutError: read timed out"),
        ([1.0], r"returned 1 scores for \d+ candidates"),
        ([float("nan")] * 20, r"scores for \d+ candidates, or non-numbers"),
    ],
    ids=["raises", "timeout", "wrong-length", "nan"],
)
def test_failing_judge_falls_back_with_a_flag(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, result: object, reason: str
) -> None:
    plain = _retriever(fake_index, fake_embedder, None)
    broken = _retriever(fake_index, fake_embedder, Broken(result))
    found = broken.search(QUESTION, k=6)
    assert [h.paper_id for h in found.hits] == [h.paper_id for h in plain.retrieve(QUESTION, k=6)]
    (note,) = found.notes
    assert note.startswith("rerank by broken failed (") and note.endswith("); showing the fused ranking")
    assert re.search(reason, note), note
    # The answer carries the note among its flags and is otherwise the plain answer.
    answer = Assistant(fake_index.settings, broken).ask(QUESTION)
    assert answer.flags[0] == note and answer.outcome == "answered"
    assert answer.citations and answer.citations[0].title.startswith("Clustering-Aware Negative Sampling")


def test_generic_rerank_function_keeps_the_tail() -> None:
    items, scores, note = rerank(Reverse(), "q", ["a", "b", "c", "d"], top_n=3, passage=str)
    assert (items, scores, note) == (["c", "b", "a", "d"], [2.0, 1.0, 0.0], "")
    assert rerank(Reverse(), "q", [], top_n=3, passage=str) == ([], None, "")


# --------------------------------------------------------------------------------------------------- LLM judge


def _llm_retriever(index: FakeIndex, embedder: FakeEmbedding, base_url: str, **llm: object) -> Retriever:
    cfg = LLMSettings(provider="openai-compatible", base_url=base_url, model="stub-model", **llm)  # type: ignore[arg-type]
    settings = index.settings.model_copy(update={"llm": cfg, "rerank": RerankSettings(provider="llm")})
    reranker = build_reranker(settings.rerank, build_llm(settings.llm))
    return Retriever.open(settings, index.store, embedder, reranker)


def test_llm_judge_order_is_applied(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    plain = [h.paper_id for h in _retriever(fake_index, fake_embedder, None).retrieve(QUESTION, k=6)]
    with Stub(Reply(body=_completion("3, 1"))) as stub:
        found = _llm_retriever(fake_index, fake_embedder, stub.base_url).search(QUESTION, k=6)
    assert found.notes == ()
    assert [h.paper_id for h in found.hits] == [plain[2], plain[0], plain[1], *plain[3:6]]
    prompt = stub.requests[0]["messages"][-1]["content"]
    assert re.findall(r"^\[(\d+)\] ", prompt, re.M) == [str(n) for n in range(1, 21)]  # 20 candidates, numbered
    assert f"<question>{QUESTION}</question>" in prompt


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(
            Reply(body=_completion("I cannot rank these.")),
            r"its reply names none of the candidates 1-20",
            id="no-numbers",
        ),
        *BROKEN_REPLIES,
    ],
)
@pytest.mark.usefixtures("fast_retries")
def test_llm_judge_garbage_falls_back(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, reply: Reply, expected: str
) -> None:
    plain = [h.paper_id for h in _retriever(fake_index, fake_embedder, None).retrieve(QUESTION, k=6)]
    with Stub(reply) as stub:
        retriever = _llm_retriever(fake_index, fake_embedder, stub.base_url, max_retries=0)
        found = retriever.search(QUESTION, k=6)
        answer = Assistant(fake_index.settings, retriever).ask(QUESTION, extractive=True)
    assert [h.paper_id for h in found.hits] == plain
    (note,) = found.notes
    assert note.startswith("rerank by LLM stub-model failed (") and re.search(expected, note), note
    assert answer.flags[0] == note and answer.outcome == "answered"


@pytest.mark.usefixtures("fast_retries")
def test_llm_judge_dead_port_falls_back(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    found = _llm_retriever(fake_index, fake_embedder, dead, max_retries=1, timeout=2.0).search(QUESTION, k=6)
    (note,) = found.notes
    assert f"the LLM at {dead} is unreachable (2 attempts)" in note and len(found.hits) == 6


def test_llm_judge_with_in_process_llm_and_assistant_open(fake_index: FakeIndex, fake_embedder: FakeEmbedding) -> None:
    """Settings alone switch it on: Assistant.open builds the judge around the configured (here: given) LLM."""
    llm = FakeLLM(["2, 1"])
    settings = fake_index.settings.model_copy(update={"rerank": RerankSettings(provider="llm", top_n=4)})
    assistant = Assistant.open(settings, store=fake_index.store, embedder=fake_embedder, llm=llm)
    assert isinstance(assistant.retriever.reranker, LLMReranker)
    answer = assistant.ask(QUESTION)
    assert "rerank" in answer.timings_ms and not [f for f in answer.flags if f.startswith("rerank")]
    assert "Numbers, most relevant first" in str(llm.calls[0][-1].content)


# --------------------------------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_cross_encoder(tmp_path_factory.mktemp("cross-encoder") / "tiny-bert-ce")


@pytest.mark.slow
def test_cross_encoder_from_settings(
    cross_encoder_dir: Path, fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    settings = fake_index.settings.model_copy(
        update={"rerank": RerankSettings(provider="cross-encoder", model_path=cross_encoder_dir, top_n=8)}
    )
    assistant = Assistant.open(settings, store=fake_index.store, embedder=fake_embedder)
    reranker = assistant.retriever.reranker
    assert isinstance(reranker, CrossEncoderReranker) and reranker.name == "cross-encoder tiny-bert-ce"
    found = assistant.retriever.search(QUESTION, k=6)
    assert found.notes == () and found.rerank_ms is not None
    scores = [h.rerank_score for h in found.hits]
    assert all(isinstance(s, float) for s in scores) and scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # The same pairs scored directly: the stage passes title + best chunk.
    direct = reranker.score(QUESTION, [f"{h.title}\n{h.best_chunk}" for h in found.hits])
    assert direct == pytest.approx(scores, abs=1e-5)
    answer = assistant.ask(QUESTION)
    assert "rerank" in answer.timings_ms and answer.sources and not answer.flags


@pytest.mark.slow
def test_cross_encoder_that_cannot_load_falls_back(
    tmp_path: Path, fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    broken = tmp_path / "broken-ce"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "bert"}')  # no weights, no tokenizer
    retriever = _retriever(fake_index, fake_embedder, CrossEncoderReranker(broken))
    found = retriever.search(QUESTION, k=6)
    (note,) = found.notes
    assert note.startswith("rerank by cross-encoder broken-ce failed (") and len(found.hits) == 6


@pytest.mark.slow
@pytest.mark.llm_server
def test_llm_rerank_against_the_real_server(
    llama_server: str, fake_index: FakeIndex, fake_embedder: FakeEmbedding
) -> None:
    # A generous timeout: on a loaded 2-core machine SmolLM2 reads a long prompt slowly (docs/retrieval.md).
    llm_cfg = LLMSettings(
        provider="openai-compatible", base_url=llama_server, model="smollm2", max_tokens=64, timeout=600, max_retries=0
    )
    settings = fake_index.settings.model_copy(
        update={"llm": llm_cfg, "rerank": RerankSettings(provider="llm", top_n=6, passage_chars=200)}
    )
    assistant = Assistant.open(settings, store=fake_index.store, embedder=fake_embedder)
    assert isinstance(assistant.retriever.reranker, LLMReranker)
    found = assistant.retriever.search(QUESTION, k=6)
    # SmolLM2-135M answers with numbers (the plumbing works end to end); which order it picks is its business.
    assert found.notes == (), found.notes
    assert any(h.rerank_score is not None for h in found.hits)
    answer = assistant.ask(QUESTION, extractive=True)
    assert "rerank" in answer.timings_ms and answer.sources and answer.outcome != "refused"
