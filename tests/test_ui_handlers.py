"""The UI's event handlers in the fast loop, called as Gradio calls them (component values in, component values out)
on the fake index with ``FakeLLM``. The served app driven through gradio_client on the real model is test_ui.py,
and the browser is test_ui_browser.py, both marked slow."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.assistant import Assistant
from rag.settings import Settings
from tests.conftest import FakeIndex, fake_settings
from tests.fakes import UPLOADED, FakeEmbedding, FakeLLM
from ui.handlers import Handlers
from ui.session import Chat, Prefs

CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
GOOD_Q = "Which methods mine hard negatives with clustering for sentence embeddings?"
OFF_TOPIC_Q = "Who won the 2018 FIFA World Cup?"
SETTINGS_ARGS: dict[str, Any] = {
    "k": 6, "mode": "hybrid", "year_min": None, "year_max": None, "categories": "", "provider": "none",
    "model": "gpt-4o-mini", "base_url": "", "api_key": "", "temperature": 0.0,
}  # fmt: skip


def _handlers(assistant: Assistant, fake_index: FakeIndex, tmp_path: Path) -> Handlers:
    # Feedback goes to the test's own directory: the shared fake index stays as it is.
    return Handlers(assistant, fake_index.settings.model_copy(update={"data_dir": tmp_path}))


@pytest.fixture
def handlers(fake_assistant: Assistant, fake_index: FakeIndex, tmp_path: Path) -> Handlers:
    return _handlers(fake_assistant, fake_index, tmp_path)


class Page:
    """One session's component values, updated the way the page keeps them (a gr.skip() leaves a value as it was)."""

    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.prefs = Prefs.defaults(handlers.settings)
        self.chat_state = Chat()
        self.chat: list[dict[str, str]] = []
        self.evidence = self.searched = self.notice = self.markdown = ""
        self.updates: list[tuple[Any, ...]] = []

    def ask(self, question: str) -> Page:
        self.updates = list(self.handlers.ask(question, self.prefs, self.chat_state))
        for chat, evidence, searched, notice, markdown, _box, state in self.updates:
            self.chat = chat if isinstance(chat, list) else self.chat
            self.evidence = evidence if isinstance(evidence, str) else self.evidence
            self.searched = searched if isinstance(searched, str) else self.searched
            self.notice = notice if isinstance(notice, str) else self.notice
            self.markdown = markdown if isinstance(markdown, str) else self.markdown
            self.chat_state = state
        return self

    def settings(self, **kw: Any) -> tuple[str, str]:
        self.prefs, mode_line, message = self.handlers.apply_settings(self.prefs, **{**SETTINGS_ARGS, **kw})
        return str(mode_line), str(message)

    @property
    def bubble(self) -> str:
        return self.chat[-1]["content"]

    def cited(self) -> list[tuple[str, str]]:
        """(paper_id, title) of each cited paper in the evidence panel, in order."""
        cards = re.findall(
            r'<article class="ev-card cited" id="ev-\d+" data-n="\d+" data-paper-id="([^"]*)">.*?'
            r'<h4 class="ev-title">(.*?)</h4>',
            self.evidence,
        )
        return [(html.unescape(pid), html.unescape(title)) for pid, title in cards]

    def papers_shown(self) -> int:
        return self.evidence.count('<article class="ev-card')


def test_an_answer_fills_the_chat_evidence_query_line_and_markdown(handlers: Handlers) -> None:
    page = Page(handlers).ask(GOOD_Q)
    assert page.notice == "" and len(page.chat) == 2 and page.chat[0]["role"] == "user"
    assert 'class="ans answered"' in page.bubble and '<sup class="cite"' in page.bubble and "[1]" not in page.bubble
    assert page.cited()[0][1] == CLUSTER_NS and "<mark>" in page.evidence
    assert html.unescape(page.searched).count(GOOD_Q) == 1
    assert page.markdown.startswith(f"**Question:** {GOOD_Q}") and f"[1] {CLUSTER_NS} — “" in page.markdown
    # The first update shows the question and a pending bubble before any answer exists.
    first_chat = page.updates[0][0]
    assert len(first_chat) == 2 and "pending" in first_chat[-1]["content"]


def test_a_refusal_is_shown_as_such_with_nearest_papers(handlers: Handlers) -> None:
    page = Page(handlers).ask(OFF_TOPIC_Q)
    assert 'class="ans refusal"' in page.bubble and "Not answered from the indexed abstracts" in page.bubble
    assert "<sup" not in page.bubble and page.cited() == [] and page.papers_shown() >= 1
    assert "No supporting evidence" in page.evidence and "Nearest papers (none answers the question)" in page.evidence
    assert "**Nearest papers**" in page.markdown


def test_bad_questions_get_a_notice_and_the_session_goes_on(handlers: Handlers) -> None:
    page = Page(handlers)
    page.ask("   ")
    assert "Type a question" in page.notice and page.chat == [] and page.chat_state.turns == []
    page.ask("x" * 100_000)
    assert "100,000 characters long; the limit is 4,000" in page.notice and page.chat == []
    page.ask("What is \ud800 SimCSE evaluated on?")  # a lone surrogate never reaches the page
    assert page.notice == "" and page.chat_state.turns[0].answer.citations
    json.dumps(page.chat, ensure_ascii=False).encode("utf-8")


def test_follow_ups_use_this_chats_history_only_and_clear_forgets_it(handlers: Handlers) -> None:
    a, b = Page(handlers), Page(handlers)
    a.ask("What is ClusterNS?")
    a.ask("Which tasks did they evaluate on?")
    assert f"Which tasks did they evaluate on? ({CLUSTER_NS})" in html.unescape(a.searched)
    assert "your follow-up, made standalone" in a.searched and len(a.chat) == 4
    b.ask("Which tasks did they evaluate on?")  # another session: nothing of A's conversation leaks in
    assert CLUSTER_NS not in html.unescape(b.searched) and len(b.chat) == 2
    *_, a.chat_state = handlers.clear()
    a.ask("Which tasks did they evaluate on?")
    assert CLUSTER_NS not in html.unescape(a.searched) and len(a.chat_state.turns) == 1


def test_settings_apply_to_this_session_and_bad_ones_keep_the_last(handlers: Handlers) -> None:
    a, b = Page(handlers), Page(handlers)
    mode_line, message = a.settings(k=3, mode="bm25")
    assert "Settings applied: top-k 3, bm25 retrieval." in message and "extractive mode" in mode_line
    _, message = a.settings(k=3, mode="bm25", year_min=2022, year_max=2020)
    assert "Not applied: 'from year' is after 'to year'" in html.unescape(message)
    assert (a.prefs.k, a.prefs.mode) == (3, "bm25")
    assert a.ask(GOOD_Q).papers_shown() == 3 and b.ask(GOOD_Q).papers_shown() == 6
    a.settings(year_min=2030)  # no paper of the fake index is that recent: nothing passes the filter
    assert "No supporting evidence" in a.ask(GOOD_Q).evidence


def test_the_servers_llm_streams_into_the_chat(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, tmp_path: Path
) -> None:
    llm = FakeLLM()
    assistant = Assistant.open(fake_index.settings, store=fake_index.store, embedder=fake_embedder, llm=llm)
    page = Page(_handlers(assistant, fake_index, tmp_path)).ask(GOOD_Q)
    streamed = [u[0][-1]["content"] for u in page.updates[1:-1] if isinstance(u[0], list)]
    assert streamed and "Contrastive" in streamed[0]  # text shows while the model still writes
    assert 'class="ans answered"' in page.bubble and "streaming" not in page.bubble and len(llm.calls) == 1


def test_a_failing_llm_is_a_message_in_the_chat_and_under_the_input(
    fake_index: FakeIndex, fake_embedder: FakeEmbedding, tmp_path: Path
) -> None:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    llm = FakeLLM([httpx.ReadError("reset", request=request)], fail_after=3)
    assistant = Assistant.open(fake_index.settings, store=fake_index.store, embedder=fake_embedder, llm=llm)
    page = Page(_handlers(assistant, fake_index, tmp_path)).ask(GOOD_Q)
    assert 'class="ans error"' in page.bubble and "broke off the response" in page.notice
    assert page.chat_state.turns == []  # a failed answer is not history for the next follow-up
    page.ask(OFF_TOPIC_Q)  # refusals never call the LLM: the session goes on
    assert "Not answered" in page.bubble and page.notice == ""


def test_votes_are_recorded_for_the_latest_answer(handlers: Handlers) -> None:
    page = Page(handlers)
    assert "Ask a question first" in handlers.vote_up(page.chat_state)
    page.ask(GOOD_Q)
    assert "feedback on the latest answer was recorded" in handlers.vote_up(page.chat_state)
    handlers.vote_down(page.chat_state)
    lines = [json.loads(line) for line in (handlers.settings.data_dir / "feedback.jsonl").read_text().splitlines()]
    assert [r["vote"] for r in lines] == ["up", "down"]
    assert lines[0]["question"] == GOOD_Q and lines[0]["citations"][0]["title"] == CLUSTER_NS
    assert set(lines[0]) == {
        "timestamp", "vote", "question", "query", "answer", "refused", "outcome", "mode", "citations",
    }  # fmt: skip


SEED = {
    "id": "orig-1",
    "title": "Gradient Tempering for Stable Optimisation",
    "abstract": "We introduce gradient tempering, which rescales gradients by a running temperature to stabilise "
    "optimisation of deep networks. Experiments on image classification show faster convergence.",
    "year": 2021,
}


@pytest.fixture
def scratch(tmp_path: Path, fake_embedder: FakeEmbedding) -> Handlers:
    """Handlers on an index of their own (uploads change it), seeded with one paper."""
    from ingest.pipeline import Ingestor
    from rag.store import open_store

    seed = tmp_path / "seed.jsonl"
    seed.write_text(json.dumps(SEED) + "\n")
    settings: Settings = fake_settings(tmp_path / "data", corpus_dir=seed)
    store = open_store(settings)
    assert Ingestor(settings, store, fake_embedder).ingest_paths([seed]).ok
    return Handlers(Assistant.open(settings, store=store, embedder=fake_embedder), settings)


def test_an_upload_is_searchable_at_once_with_its_metadata(scratch: Handlers, tmp_path: Path) -> None:
    upload = tmp_path / "new-papers.jsonl"
    upload.write_text(json.dumps(UPLOADED) + "\n" + json.dumps({"title": "Title Only <b>x</b>"}) + "\n")
    question = "How does origami attention model protein folding?"
    assert all(pid != "upl-1" for pid, _ in Page(scratch).ask(question).cited())
    result, status = scratch.ingest(str(upload), "auto-detect")
    assert "new-papers.jsonl: 1 paper added or updated" in result
    assert "Rejected (1)" in result and "new-papers.jsonl:2" in result and "&lt;b&gt;" in result
    assert isinstance(status, str) and "<strong>2</strong><span>papers</span>" in status
    page = Page(scratch).ask(question)
    assert page.cited()[0] == ("upl-1", UPLOADED["title"]) and 'href="https://example.org/origami"' in page.evidence
    page.settings(year_min=2023, categories="q-bio.BM")  # filters reach the uploaded paper's metadata
    assert page.ask(question).cited()[0][0] == "upl-1" and page.papers_shown() == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("blob.bin", b"\x00\x01\x02\xff" * 64, "unknown format '.bin'"),
        ("paper.pdf", b"%PDF-1.7 ...", "PDFs are not supported"),
        ("junk.jsonl", b"this is not json\nnor is this\n", "junk.jsonl"),
    ],
)
def test_a_bad_upload_is_reported_and_nothing_is_lost(
    scratch: Handlers, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    store = scratch.assistant.retriever.store
    before = store.count()
    path = tmp_path / name
    path.write_bytes(content)
    result, _ = scratch.ingest(str(path), "auto-detect")
    assert f"{name}: nothing indexed" in result and message in html.unescape(result), result
    assert store.count() == before
    assert Page(scratch).ask("How does gradient tempering stabilise optimisation?").cited()[0][0] == "orig-1"
