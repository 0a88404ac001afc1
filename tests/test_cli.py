"""`rag ask`, `rag chat`, `rag status` and `rag ingest` in the fast loop: ``app.cli.main`` in-process, configured
only through the environment as a user would, with the model-free ``hash`` embedding provider and a small corpus
of bundled papers. The same commands as subprocesses on the real model are in test_assistant.py and
test_hostile_input.py (slow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli import main
from tests.conftest import FakeIndex
from tests.fakes import assert_cli_error

CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
GOOD_Q = "Which methods mine hard negatives with clustering for sentence embeddings?"


@pytest.fixture(scope="module")
def cli_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "data"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, cli_data_dir: Path, fake_index: FakeIndex) -> Path:
    """The environment of a user with the hash embedding and the fake index's corpus as the default corpus."""
    monkeypatch.setenv("RAG_DATA_DIR", str(cli_data_dir))
    monkeypatch.setenv("RAG_CORPUS_DIR", str(fake_index.corpus))
    monkeypatch.setenv("RAG_EMBEDDING__PROVIDER", "hash")
    return cli_data_dir


def test_first_ask_indexes_the_empty_index_then_answers_as_json(
    cli_env: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", GOOD_Q, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["citations"][0]["title"] == CLUSTER_NS and data["outcome"] == "answered"
    assert main(["status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["papers"] == len(fake_index.paper_ids) and status["embedding_model"].startswith("hash/")


def test_ask_prints_answer_references_and_outcome(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", GOOD_Q, "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "\nReferences\n" in out and f"[1] {CLUSTER_NS}" in out
    assert "outcome: answered · refused: no · extractive mode (no LLM configured)" in out
    assert main(["ask", "Who won the 2018 FIFA World Cup?"]) == 0
    out = capsys.readouterr().out
    assert "\nNearest papers\n- " in out and "refused: yes" in out and "References" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ask", "  "], "empty question"), (["ask", "--json", "x" * 5000], "question too long")],
)
def test_bad_questions_exit_2_with_one_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert_cli_error(out, err, message, "--json" in args)
    if "--json" not in args:
        assert err.startswith("error: ") and err.count("\n") == 1


def test_chat_follows_up_and_survives_a_bad_line(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = f"{GOOD_Q}\nWhich tasks did they evaluate on?\n" + "x" * 5000 + "\nWhat is \udcff SimCSE?\n\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    assert main(["chat", "--json"]) == 0
    out, err = capsys.readouterr()
    answers = [json.loads(reply) for reply in out.split("\n> ")[1:] if reply.strip()]  # one reply per prompt
    assert [("error" in a) for a in answers] == [False, False, True, False]
    # "Which methods…" asks for several papers: the follow-up is searched with the papers cited, the lead first
    assert answers[1]["query"].startswith(f"Which tasks did they evaluate on? ({CLUSTER_NS}")
    assert "question too long" in answers[2]["error"] and "\ufffd" in answers[3]["question"]
    assert "Traceback" not in err


def test_ingest_reports_rejections_as_json_and_changes_nothing_twice(
    cli_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))  # an index of its own: the module's stays as it is
    upload = tmp_path / "more.jsonl"
    paper = {"id": "cli-1", "title": "Quokka Attention", "abstract": "We propose quokka attention. " * 3}
    upload.write_text(json.dumps(paper) + "\n" + '{"title": "no abstract"}\n')
    assert main(["ingest", str(upload), "--json"]) == 1  # a rejected record: exit 1, the rest ingested
    report = json.loads(capsys.readouterr().out)
    assert (report["new"], report["ok"]) == (1, False) and "more.jsonl:2" in report["rejected"][0]
    assert main(["ingest", str(upload), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    assert main(["ingest", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_eval_without_the_eval_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import evals.run

    monkeypatch.setattr(evals.run, "missing_eval_packages", lambda: ["ranx", "matplotlib"])
    assert main(["eval", "--split", "dev"]) == 2
    err = capsys.readouterr().err
    assert "pip install -e '.[eval]'" in err and "ranx, matplotlib" in err and "Traceback" not in err


def test_rewrite_setting_reaches_the_cli(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_REWRITE__MODE", "hyde")
    assert main(["status"]) == 0
    assert json.loads(capsys.readouterr().out)["rewrite"] == "hyde"
    assert main(["ask", GOOD_Q]) == 2
    out, err = capsys.readouterr()
    assert_cli_error(out, err, "RAG_REWRITE__MODE=hyde needs an LLM: set RAG_LLM__PROVIDER", as_json=False)
