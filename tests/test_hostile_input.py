"""Issue 15: nothing a file or a question sends can crash an entry point, and every entry point fails cleanly.

Ingest cases use the model-free ``hash`` embedding (fast, no model load); question cases use the real model on the
shared bundled index (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from ingest.conflicts import id_conflicts
from ingest.formats import read_paths
from ingest.pipeline import Ingestor
from rag.ingest_lock import IngestLockedError, ingest_lock
from rag.settings import Settings
from rag.store import open_store
from tests.fakes import assert_cli_error

GOOD = [
    {
        "id": "good-1",
        "title": "Gradient Tempering for Stable Optimisation",
        "abstract": "We introduce gradient tempering, which rescales gradients by a running temperature to stabilise "
        "optimisation of deep networks.",
    },
    {
        "id": "good-2",
        "title": "Sparse Routing in Mixture of Experts",
        "abstract": "We study sparse routing functions for mixture-of-experts layers and show that balanced routing "
        "improves throughput.",
    },
]
# The file: the middle record's title holds a lone surrogate, written as JSON escapes it.
SURROGATE_LINE = '{"id": "bad-1", "title": "Lone surrogate \\ud800 title", "abstract": "' + "x" * 40 + '"}'
HASH_ENV = {"RAG_EMBEDDING__PROVIDER": "hash"}


def _jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def surrogate_file(tmp_path: Path) -> Path:
    return _jsonl(tmp_path / "mixed.jsonl", [json.dumps(GOOD[0]), SURROGATE_LINE, json.dumps(GOOD[1])])


def hash_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, embedding={"provider": "hash"})  # type: ignore[arg-type]


def run_cli(args: list[str], data_dir: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **HASH_ENV, "RAG_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], env=env, text=True, capture_output=True, timeout=300, check=False, **kw
    )


# ------------------------------------------------------------------------------------------- files


def test_a_lone_surrogate_rejects_its_record_only(tmp_path: Path) -> None:
    read, errors = read_paths([surrogate_file(tmp_path)])
    assert errors == [] and [r.paper_id for r in read.records] == ["good-1", "good-2"]
    (rejection,) = read.rejections
    assert (rejection.source, rejection.line) == ("mixed.jsonl", 2) and "invalid Unicode in the title" in str(rejection)


def test_ingested_text_is_normalised(tmp_path: Path) -> None:
    row = {"id": "z", "title": "Sim\u200bCSE: ＳＴＳ \u202eevil", "abstract": "Sim\u00adCSE " + "ﬁne-tunes " * 5}
    read, _ = read_paths([_jsonl(tmp_path / "z.jsonl", [json.dumps(row)])])
    (rec,) = read.records
    assert rec.title == "SimCSE: STS evil" and rec.abstract.startswith("SimCSE fine-tunes")
    blank = {"id": "b", "title": "\u200b\u200b", "abstract": "x" * 40}
    read, _ = read_paths([_jsonl(tmp_path / "b.jsonl", [json.dumps(blank)])])
    assert read.records == [] and "missing title" in str(read.rejections[0])


def test_duplicate_ids_with_different_content_are_reported(tmp_path: Path) -> None:
    changed = {**GOOD[0], "abstract": GOOD[0]["abstract"] + " Now with a different ending."}
    path = _jsonl(tmp_path / "dup.jsonl", [json.dumps(GOOD[0]), json.dumps(GOOD[0]), json.dumps(changed)])
    read, _ = read_paths([path])
    (message,) = id_conflicts(read.records)  # the identical repeat is not reported
    assert message.startswith("dup.jsonl:3: duplicate id 'good-1' with a different abstract than dup.jsonl:1")


def test_one_ingest_at_a_time_per_data_dir(tmp_path: Path) -> None:
    settings = hash_settings(tmp_path / "data")
    path = _jsonl(tmp_path / "good.jsonl", [json.dumps(r) for r in GOOD])
    ingestor = Ingestor(settings, open_store(settings))
    with ingest_lock(settings.data_dir), pytest.raises(IngestLockedError, match="another ingest is running"):
        ingestor.ingest_paths([path])
    assert ingestor.ingest_paths([path]).new == 2  # released: the next one runs


def test_a_renamed_file_re_embeds_nothing(tmp_path: Path) -> None:
    settings = hash_settings(tmp_path / "data")
    ingestor = Ingestor(settings, open_store(settings))
    first = _jsonl(tmp_path / "a.jsonl", [json.dumps(r) for r in GOOD])
    assert ingestor.ingest_paths([first]).new == 2
    renamed = first.rename(tmp_path / "b.jsonl")
    report = ingestor.ingest_paths([renamed])
    assert (report.new, report.updated, report.unchanged, report.chunks_written) == (0, 0, 2, 0)


@pytest.mark.slow
def test_cli_ingest_survives_a_surrogate_a_missing_path_and_a_duplicate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dup = _jsonl(tmp_path / "dup.jsonl", [json.dumps({**GOOD[0], "abstract": GOOD[0]["abstract"] + " Changed."})])
    res = run_cli(["ingest", "-q", str(surrogate_file(tmp_path)), str(tmp_path / "nope.jsonl"), str(dup)], data)
    assert res.returncode == 1, res.stderr  # rejections: reported, the rest indexed
    assert "mixed.jsonl:2: invalid Unicode in the title" in res.stderr
    assert "nope.jsonl: no such file or directory" in res.stderr
    assert "warning: dup.jsonl:1: duplicate id 'good-1' with a different abstract than mixed.jsonl:1" in res.stderr
    assert json.loads(run_cli(["status"], data).stdout)["papers"] == 2
    res = run_cli(["ingest", "--json", str(tmp_path / "nope.jsonl")], data)  # nothing at all to read
    assert res.returncode == 2 and "no such file" in json.loads(res.stdout)["error"]
    res = run_cli(["ingest", "--json", str(dup)], data)
    assert res.returncode == 0 and json.loads(res.stdout)["unchanged"] == 1
    with ingest_lock(data):
        res = run_cli(["ingest", str(dup)], data)
    assert res.returncode == 2 and "another ingest is running" in res.stderr


@pytest.mark.slow
def test_ui_upload_of_the_surrogate_file_ingests_the_good_records(tmp_path: Path) -> None:
    from rag.assistant import Assistant
    from ui.handlers import AUTO_FORMAT, Handlers

    seed = _jsonl(tmp_path / "seed.jsonl", [json.dumps(GOOD[1])])
    settings = Settings(data_dir=tmp_path / "data", corpus_dir=seed, embedding={"provider": "hash"})  # type: ignore[arg-type]
    assistant = Assistant.open(settings)
    result, _ = Handlers(assistant, settings).ingest(str(surrogate_file(tmp_path)), AUTO_FORMAT, _NoProgress())  # type: ignore[arg-type]
    assert "mixed.jsonl:2: invalid Unicode in the title" in result and "new 1" in result
    assert assistant.retriever.store.paper_count() == 2


class _NoProgress:
    def __call__(self, *args: Any, **kwargs: Any) -> None:
        pass


# ------------------------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "-k", "0", "What is SimCSE?"], "at least 1"),
        (["ask", "-k", "-3", "--json", "What is SimCSE?"], "at least 1"),
        (["chat", "--json", "-k", "x"], "whole number"),
        (["ingest", "--json", "--format", "pdf"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_and_are_json_under_json(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (`python -m app` is `sys.exit(main())`; the subprocess runs are the slow tests below).
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert_cli_error(out, err, message, "--json" in args)


# ------------------------------------------------------------------------------------------- questions


@pytest.fixture(scope="module")
def assistant(bundled_index: Any, embedder: Any) -> Any:
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    return Assistant.open(settings, store=store, embedder=embedder)


BAD_QUESTIONS = ["What is \udcff SimCSE evaluated on?", "What is \ud800 SimCSE evaluated on?"]


@pytest.mark.slow
@pytest.mark.parametrize("question", BAD_QUESTIONS)
def test_python_api_answers_questions_with_invalid_characters(assistant: Any, question: str) -> None:
    answer = assistant.ask(question)
    assert "\ufffd" in answer.question and answer.citations
    assert answer.to_json()  # serialisable: no surrogate left anywhere
    conv = assistant.conversation()
    conv.ask(question)
    conv.turns[0].question.encode("utf-8")  # the history that later prompts are built from is clean too


@pytest.mark.slow
def test_invisible_and_full_width_characters_do_not_change_the_answer(assistant: Any) -> None:
    plain = assistant.ask("What is SimCSE evaluated on?")
    assert not plain.refused
    for variant in ("What is Sim\u200bCSE evaluated on?", "What is ＳｉｍＣＳＥ evaluated on?"):
        answer = assistant.ask(variant)
        assert (answer.outcome, answer.text) == (plain.outcome, plain.text), variant


@pytest.mark.slow
def test_k_must_be_positive(assistant: Any) -> None:
    for k in (0, -1):
        with pytest.raises(ValueError, match="at least 1"):
            assistant.ask("What is SimCSE?", k=k)


@pytest.mark.slow
def test_ui_answers_a_question_with_a_lone_surrogate(assistant: Any, bundled_index: Any) -> None:
    from ui.handlers import Handlers
    from ui.session import Chat, Prefs

    settings = bundled_index[0]
    outputs = list(Handlers(assistant, settings).ask(BAD_QUESTIONS[1], Prefs.defaults(settings), Chat()))
    chat = outputs[-1][-1]
    assert chat.turns and chat.turns[0].answer.citations
    assert "Something went wrong" not in json.dumps(outputs[-1][0], ensure_ascii=False)


@pytest.mark.slow
def test_cli_ask_and_chat_with_an_invalid_byte(bundled_index: Any) -> None:
    settings = bundled_index[0]
    env = {**os.environ, "RAG_DATA_DIR": str(settings.data_dir)}
    argv = [sys.executable.encode(), b"-m", b"app", b"ask", b"What is \xff SimCSE evaluated on?"]
    res = subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert b"warning: question: 1 invalid character" in res.stderr and b"refused: no" in res.stdout
    lines = b"What is ClusterNS?\nWhat is \xff SimCSE evaluated on?\nWhich tasks was SimCSE tested on?\n"
    res = subprocess.run(
        [sys.executable, "-m", "app", "chat", "--json"], env=env, input=lines, capture_output=True, timeout=300
    )
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert res.stdout.count(b'"outcome"') == 3 and b"Traceback" not in res.stderr
