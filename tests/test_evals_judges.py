"""Support judges for the ALCE citation scores: the lexical judge, the LLM judge against the HTTP stub of
tests/test_llms.py (yes / no / malformed replies, errors) and against the real llama.cpp server, and the judge
name carried into results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals.judges import Judge, JudgeError, LexicalJudge, LLMJudge, build_judge, parse_verdict
from evals.metrics import citation_scores
from rag.answer import Answer
from rag.citations import support
from rag.llms import LLMError
from rag.protocols import Embedder
from rag.settings import LLMSettings
from rag.types import Citation, Source
from tests.test_llms import Reply, Stub, _completion

SIMCSE = (
    "We first describe an unsupervised approach, which takes an input sentence and predicts itself in a contrastive "
    "objective, with only standard dropout used as noise. SimCSE reaches 76.3% Spearman correlation on STS tasks."
)
CLAIM = "SimCSE predicts the input sentence itself with dropout as the only noise."


def _settings(base_url: str, **kw: Any) -> LLMSettings:
    values: dict[str, Any] = {"provider": "openai-compatible", "model": "stub-judge", "base_url": base_url}
    values |= {"timeout": 2.0, "max_retries": 0, **kw}
    return LLMSettings(**values)


# --- lexical -----------------------------------------------------------------------------------------------------


def test_lexical_judge_thresholds_the_support_score() -> None:
    judge = LexicalJudge(0.4)
    assert isinstance(judge, Judge) and judge.name == "lexical-support@0.4"
    assert judge.supports(CLAIM, [SIMCSE])
    assert not judge.supports("SimCSE reaches 81.6% Spearman correlation.", [SIMCSE])  # a number the text lacks
    assert not judge.supports("ClusterNS uses K-means to mine hard negatives.", [SIMCSE])  # another paper's claim
    assert not judge.supports(CLAIM, [])
    score = support(CLAIM, SIMCSE)[0]
    assert 0 < score < 1
    assert LexicalJudge(round(score - 0.01, 4)).supports(CLAIM, [SIMCSE])
    assert not LexicalJudge(round(score + 0.01, 4)).supports(CLAIM, [SIMCSE])
    # evidence is read together: a claim spanning two abstracts is supported only by both
    two = "SimCSE uses dropout noise, and prototypical networks classify by distance to class prototypes."
    protos = "Prototypical networks classify by distance to class prototypes."
    assert not judge.supports(two, [protos]) and judge.supports(two, [SIMCSE, protos])


def test_parse_verdict() -> None:
    assert parse_verdict("yes") is True and parse_verdict("  **Yes.**") is True
    assert parse_verdict("No, the evidence does not mention it.") is False and parse_verdict("NO") is False
    for bad in ("", "Maybe.", "The claim is supported.", "yesterday", "nope"):
        assert parse_verdict(bad) is None, bad


def test_citation_scores_use_the_judge_given() -> None:
    sources = [Source(1, "p1", "SimCSE", SIMCSE, 1.0, "")]
    answer = Answer("q", "q", f"{CLAIM} [1]", [Citation(1, "p1", "SimCSE", "", 1.0)], sources, "answered", "llm", "")

    class Never:
        name = "never"

        def supports(self, claim: str, evidence: Any) -> bool:
            return False

    assert citation_scores(answer).recall == 1.0  # the default lexical judge
    assert citation_scores(answer, Never()).recall == 0.0
    assert citation_scores(answer, LexicalJudge(0.99)).precision == 0.0


# --- LLM judge at the HTTP boundary -----------------------------------------------------------------------------


def test_llm_judge_yes_no_and_cache() -> None:
    with Stub(Reply(body=_completion("Yes.")), Reply(body=_completion("no"))) as stub:
        judge = LLMJudge.from_settings(_settings(stub.base_url, max_tokens=512, temperature=0.7))
        assert isinstance(judge, Judge) and judge.name == "llm-entailment:stub-judge"
        assert judge.supports(CLAIM, [SIMCSE]) is True
        assert judge.supports(CLAIM, [SIMCSE]) is True  # cached: no second request
        assert judge.supports("SimCSE was trained on ImageNet.", [SIMCSE]) is False
        assert judge.supports(CLAIM, []) is False  # no evidence: no call
    assert len(stub.requests) == 2
    sent = stub.requests[0]
    assert sent["model"] == "stub-judge" and sent["max_tokens"] == 8 and sent["temperature"] == 0.0
    system, user = sent["messages"]
    assert "yes or no" in system["content"]
    assert CLAIM in user["content"] and "[1] We first describe" in user["content"]
    assert judge.stats == {"calls": 2, "yes": 1, "no": 1, "malformed": 0}


def test_llm_judge_malformed_reply() -> None:
    with Stub(Reply(body=_completion("The claim mentions dropout, which the passage also discusses."))) as stub:
        judge = LLMJudge.from_settings(_settings(stub.base_url))
        assert judge.supports(CLAIM, [SIMCSE]) is False  # not a yes: not supported, and counted
        assert judge.stats["malformed"] == 1 and judge.stats["yes"] == judge.stats["no"] == 0
        strict = LLMJudge.from_settings(_settings(stub.base_url), strict=True)
        with pytest.raises(JudgeError, match="not yes or no"):
            strict.supports(CLAIM, [SIMCSE])


def test_llm_judge_transport_errors_are_llm_errors() -> None:
    with Stub(Reply(status=500, body=b'{"error": {"message": "boom"}}')) as stub:
        judge = LLMJudge.from_settings(_settings(stub.base_url))
        with pytest.raises(LLMError, match="HTTP 500"):
            judge.supports(CLAIM, [SIMCSE])
    with Stub(Reply(body=b"{not json")) as stub:
        judge = LLMJudge.from_settings(_settings(stub.base_url))
        with pytest.raises(LLMError):
            judge.supports(CLAIM, [SIMCSE])


def test_llm_judge_needs_a_configured_llm(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(JudgeError, match="RAG_LLM__PROVIDER"):
        build_judge("llm", LLMSettings())
    with pytest.raises(JudgeError, match="unknown judge"):
        build_judge("nli", LLMSettings())
    assert build_judge("lexical", threshold=0.3).name == "lexical-support@0.3"
    from evals.run import main

    assert main(["--split", "test", "--judge", "llm"]) == 2  # fails before any index or model is opened
    assert "--judge llm needs an LLM" in capsys.readouterr().err


# --- judge name in results ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_results_name_the_judge_used(bundled_index: tuple[Any, Any, Any], embedder: Embedder, tmp_path: Path) -> None:
    from evals.data import CURATED, load_questions
    from evals.run import run_eval, write_results
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    questions = [q for q in load_questions(CURATED, split="dev") if q.type in ("paraphrase", "fact")][:12]
    loose = run_eval(assistant, questions, judge=LexicalJudge(0.2))
    strict = run_eval(assistant, questions, judge=LexicalJudge(0.9))
    assert (loose.judge, strict.judge) == ("lexical-support@0.2", "lexical-support@0.9")
    # a statement supported at 0.9 is supported at 0.2: ALCE recall can only drop as the threshold rises
    for a, b in zip(loose.rows, strict.rows, strict=True):
        if a["alce_citation_recall"] is not None and b["alce_citation_recall"] is not None:
            assert b["alce_citation_recall"] <= a["alce_citation_recall"]
    write_results(strict, tmp_path, plots=False)
    assert json.loads((tmp_path / "results.json").read_text())["judge"] == "lexical-support@0.9"
    assert "judge: lexical-support@0.9" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.llm_server
def test_llm_judge_against_the_real_server(llama_server: str) -> None:
    judge = LLMJudge.from_settings(_settings(llama_server, model="smollm2", timeout=120))
    verdict = judge.supports(CLAIM, [SIMCSE])
    assert isinstance(verdict, bool)
    assert judge.name == "llm-entailment:smollm2"
    assert judge.stats["calls"] == 1


# --- threshold calibration ---------------------------------------------------------------------------------------


def test_agreement_counts() -> None:
    from evals.calibrate import agreement

    other = "Prototypical networks classify by distance to class prototypes."
    pairs = [(CLAIM, SIMCSE, True), (CLAIM, other, False), ("SimCSE reaches 81.6%.", SIMCSE, True)]
    m = agreement(pairs, 0.4)
    assert m["n"] == 3.0
    assert m["agreement"] == pytest.approx(2 / 3)  # the wrong-number claim is (rightly, here) called unsupported
    assert m["precision"] == 1.0 and m["recall"] == 0.5 and m["false_positive_rate"] == 0.0


@pytest.mark.slow
def test_calibration_pairs_are_balanced_and_labelled(bundled_index: tuple[Any, Any, Any], embedder: Embedder) -> None:
    from evals.calibrate import _corpus_abstracts, calibrate
    from evals.data import CURATED, load_questions
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    questions = [q for q in load_questions(CURATED, split="dev") if q.type in ("paraphrase", "keyword")][:8]
    abstracts = _corpus_abstracts(settings.corpus_dir)
    result = calibrate(assistant, questions, abstracts, thresholds=(0.2, 0.4, 0.6))
    gold_abstracts = {abstracts[g] for q in questions for g in q.gold}
    for name, scored in result["scores"].items():
        labels = [label for _, label in scored]
        assert labels.count(True) == labels.count(False) > 0, name  # one negative per positive
    assert result["pairs"]["question"] == 2 * sum(len(q.gold) for q in questions)
    recalls = [result["table"]["question"][t]["recall"] for t in ("0.2", "0.4", "0.6")]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold never supports more
    assert result["table"]["answer"]["0.4"]["agreement"] >= 0.8
    assert gold_abstracts  # positives are the gold abstracts themselves
