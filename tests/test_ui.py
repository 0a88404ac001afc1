"""The Gradio UI: ui.render's HTML safety (unit tests), then the real app served on a free port and driven through
gradio_client exactly as a browser session would: ask, follow up, refusal, settings, feedback, uploads, bad input,
basic auth, and 20 concurrent sessions. The served app runs on the real model and the bundled index (slow); the
same handler logic on fakes is test_ui_handlers.py."""

from __future__ import annotations

import html
import json
import re
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from rag.answer import Answer
from rag.types import Citation, Source
from tests.conftest import free_port, serve_app
from tests.fakes import UPLOADED
from ui import render
from ui.content import EXAMPLES

CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
GOOD_Q = "Which methods mine hard negatives with clustering for sentence embeddings?"
OFF_TOPIC_Q = "Who won the 2018 FIFA World Cup?"
EVIL = (
    'Evil <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [click](javascript:alert(1)) '
    "${window.__xss=3} {{constructor.constructor('window.__xss=4')()}} `code` **bold** <b>tag</b>"
)

# --------------------------------------------------------------------------------------------------- render


def _answer(**kw: Any) -> Answer:
    abstract = f"First sentence about {EVIL}. The key finding holds on STS tasks. Last sentence."
    src = Source(1, "evil-1", f"Title {EVIL}", abstract, 0.9, abstract, {"year": 2024, "url": "javascript:alert(1)"})
    base = Answer(
        question=f"What about {EVIL}?",
        query=f"What about {EVIL}? (follow-up)",
        text=f"Intro {EVIL}\n\n- **Title {EVIL}**: “The key finding holds on STS tasks.” [1]",
        citations=[Citation(1, "evil-1", src.title, "The key finding holds on STS tasks.", 0.81, True)],
        sources=[
            src,
            replace(src, n=2, paper_id="other-2", title=f"Other {EVIL}", metadata={"arxiv_id": "2101.00002"}),
        ],
        outcome="answered",
        mode="extractive",
        mode_note="extractive mode (no LLM configured) — hint",
        flags=[f"citation [1] is odd {EVIL}"],
    )
    return replace(base, **kw)


_TAGS = {"div", "p", "ul", "ol", "li", "strong", "sup", "span", "article", "h4", "mark", "details", "summary"}
_TAGS |= {"a", "q", "br", "blockquote"}
_ATTRS = {"class", "id", "title", "href", "target", "rel", "style", "data-n", "data-paper-id", "role", "open"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _assert_inert(fragment: str) -> str:
    """Only our own tags and attributes, links only to http(s), nothing Markdown or a template could act on, one
    line. Returns the visible text."""
    parser = _Tags()
    parser.feed(fragment)
    for tag, attrs in parser.tags:
        assert tag in _TAGS, (tag, fragment)
        for name, value in attrs:
            assert name in _ATTRS, (tag, name, fragment)
            if name == "href":
                assert (value or "").startswith(("http://", "https://")), value
            if name == "style":
                assert re.fullmatch(r"width:\d{1,3}%", value or ""), value
    assert "](" not in fragment and "${" not in fragment and "{{" not in fragment and "`" not in fragment
    assert "\n" not in fragment  # one raw HTML block for Markdown renderers
    return "".join(parser.text)


def test_render_escapes_hostile_text_everywhere() -> None:
    answer = _answer()
    for fragment in (
        render.answer_html(answer),
        render.evidence_html(answer),
        render.question_html(answer.question),
        render.query_html(answer),
        render.evidence_html(replace(answer, outcome="refused", refusal_reason=EVIL, citations=[])),
        render.answer_html(replace(answer, outcome="refused")),
        render.pending_html(answer.text),
        render.error_html(EVIL),
        render.notice_html(EVIL),
        render.mode_html(f"LLM: {EVIL}"),
        render.ingest_html(f"{EVIL}.jsonl", EVIL, [f"x.jsonl:3: {EVIL}"], 0),
        render.status_html(1, 2, EVIL, EVIL),
    ):
        visible = _assert_inert(fragment)
        # The hostile text itself is still there, as visible text: escaped, not dropped.
        assert 'Evil <img src=x onerror="window.__xss=1"> <script>' in visible


def test_esc_is_html_escape_and_more_and_round_trips() -> None:
    for text in (EVIL, "a & b < c > d \" e ' f", "plain text", "&amp; already &#35; escaped"):
        assert html.unescape(render.esc(text)) == text
        assert not set("<>\"'`[]()*_$") & set(render.esc(text).replace("&#", "").replace(";", ""))
    assert render.esc("x\ny") == "x y"


def test_render_badges_highlight_and_links() -> None:
    answer = _answer()
    bubble = render.answer_html(answer)
    assert '<sup class="cite" title="Title Evil &lt;img' in bubble  # [1] became a badge, with the paper as tooltip
    assert "[1]" not in bubble and "<strong>Title Evil &lt;img" in bubble and "<li>" in bubble
    evidence = render.evidence_html(answer)
    assert "<mark>The key finding holds on STS tasks.</mark>" in evidence
    assert "support 0.81" in evidence and 'data-paper-id="evil-1"' in evidence
    assert "javascript" not in re.findall(r'href="([^"]*)"', evidence)[0]
    assert 'href="https://arxiv.org/abs/2101.00002"' in evidence  # the uncited paper's arXiv link
    assert '<details class="ev-more"><summary>Also retrieved, not cited (1)</summary>' in evidence
    assert render.paper_link({"url": "https://example.org/p1"}) == "https://example.org/p1"
    for bad in ("javascript:alert(1)", "data:text/html,<script>", "//evil.example", "https://exa mple.org"):
        assert render.paper_link({"url": bad}) is None
    assert render.paper_link({"arxiv_id": '2101.00002"><script>'}) is None
    # Markers in years or links are not citations; groups and ranges are.
    assert "<sup" not in render.text_html("In [2023] see [x](http://a.b) [1](http://c.d)")
    assert render.text_html("a [1, 2-3] b").count('<sup class="cite"') == 3
    llm = "## Summary\nTwo methods:\n1. First [1]\n2. Second [2]\n- a bullet\n\nDone."
    assert render.text_html(llm) == (
        '<p><strong>Summary</strong></p><p>Two methods:</p><ol><li>First <sup class="cite">1</sup></li>'
        '<li>Second <sup class="cite">2</sup></li></ol><ul><li>a bullet</li></ul><p>Done.</p>'
    )


def test_render_refusal_and_markdown_copy() -> None:
    refused = _answer(
        outcome="refused", citations=[], text="The indexed abstracts don't answer this.", refusal_reason="off"
    )
    assert "Not answered from the indexed abstracts" in render.answer_html(refused)
    fell_back = render.answer_html(replace(refused, flags=["rerank failed (timeout): the fused ranking was kept"]))
    assert '<ul class="ans-flags"><li>rerank failed &#40;timeout&#41;' in fell_back
    panel = render.evidence_html(refused)
    assert "Nearest papers" in panel and panel.count('class="ev-card uncited"') == 2
    md = render.answer_markdown(_answer(sources=[replace(_answer().sources[0], metadata={"url": "https://x.org/1"})]))
    assert md.startswith("**Question:** What about Evil") and "**References**" in md
    assert "[1] [Title Evil" in md and "](https://x.org/1) — “The key finding holds on STS tasks.”" in md
    assert "Nearest papers" in render.answer_markdown(refused)
    assert render.evidence_html(None).startswith('<div class="ev-panel ev-empty">')


def test_settings_validation_and_key_handling() -> None:
    from rag.settings import Settings
    from ui.session import prefs_from_inputs

    s = Settings(ui={"allow_custom_llm_urls": True})  # type: ignore[arg-type]

    def prefs(**kw: Any) -> Any:
        args: dict[str, Any] = {
            "k": 4, "mode": "dense", "year_min": None, "year_max": None, "categories": "cs.CL, cs.LG cs.CL",
            "provider": "none", "model": "gpt-4o-mini", "base_url": "", "api_key": "", "temperature": 0.0,
        }  # fmt: skip
        return prefs_from_inputs(s, **{**args, **kw})

    p = prefs()
    assert (p.k, p.mode, p.categories, p.llm) == (4, "dense", ("cs.CL", "cs.LG"), None)
    assert prefs(year_min=2020, year_max=2021.0).filters() is not None
    assert prefs(year_min=0, year_max="", categories="").filters() is None  # an emptied number box sends 0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"k": 0}, "top-k"),
        ({"mode": "magic"}, "retrieval mode"),
        ({"year_min": 2022, "year_max": 2020}, "after"),
        ({"year_min": 12}, "between 1900"),
        ({"provider": "openai-compatible"}, "needs a base URL"),
        ({"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}, "enter an API key"),
        ({"provider": "openai-compatible", "base_url": "ftp://x"}, "http"),
        ({"provider": "openai-compatible", "base_url": "http://h/v1", "temperature": 3}, "temperature"),
    ]
    for bad, msg in cases:
        with pytest.raises(ValueError, match=msg):
            prefs(**bad)
    p = prefs(provider="openai-compatible", base_url="http://127.0.0.1:9/v1", api_key="sk-test-SECRET-1")
    assert p.llm is not None and p.llm.api_key is not None
    assert "SECRET" not in repr(p) and "SECRET" not in p.mode_note("server")
    assert p.llm.api_key.get_secret_value() == "sk-test-SECRET-1"


# --------------------------------------------------------------------------------------------------- the app


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


def _cited(evidence: str) -> list[tuple[int, str, str]]:
    """(n, paper_id, title) of each cited paper in the evidence panel, in order."""
    cards = re.findall(
        r'<article class="ev-card cited" id="ev-\d+" data-n="(\d+)" data-paper-id="([^"]*)">.*?'
        r'<h4 class="ev-title">(.*?)</h4>',
        evidence,
    )
    return [(int(n), html.unescape(pid), html.unescape(title)) for n, pid, title in cards]


def _papers_shown(evidence: str) -> int:
    return evidence.count('<article class="ev-card')


def _searched(line: str) -> str:
    m = re.search(r"<q>(.*?)</q>", line)
    return html.unescape(m.group(1)) if m else ""


class Session:
    """One browser session, as gradio_client sees it (its own session hash, so its own gr.State)."""

    def __init__(self, url: str, **kw: Any) -> None:
        from gradio_client import Client  # type: ignore[import-untyped]

        self.client = Client(url, verbose=False, **kw)
        self.chat: list[dict[str, Any]] = []
        self.evidence = self.searched = self.notice = self.markdown = ""

    def ask(self, question: str) -> Session:
        chat, evidence, searched, notice, markdown, _question = self.client.predict(question, api_name="/ask")
        # gr.skip() outputs come back as update dicts: keep what the page would keep showing.
        self.chat = chat if isinstance(chat, list) else self.chat
        self.evidence = evidence if isinstance(evidence, str) else self.evidence
        self.searched = searched if isinstance(searched, str) else self.searched
        self.notice = notice if isinstance(notice, str) else self.notice
        self.markdown = markdown if isinstance(markdown, str) else self.markdown
        return self

    def settings(self, **kw: Any) -> tuple[str, str]:
        args: dict[str, Any] = {
            "k": 6, "mode": "hybrid", "year_min": None, "year_max": None, "categories": "", "provider": "none",
            "model": "gpt-4o-mini", "base_url": "", "api_key": "", "temperature": 0.0,
        }  # fmt: skip
        mode_line, message = self.client.predict(**{**args, **kw}, api_name="/apply_settings")
        return str(mode_line), str(message)

    def upload(self, path: Path, fmt: str = "auto-detect") -> tuple[str, str]:
        from gradio_client import handle_file  # type: ignore[import-untyped]

        result, status = self.client.predict(handle_file(str(path)), fmt, api_name="/ingest")
        return str(result), str(status) if isinstance(status, str) else ""

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def bundled_assistant(bundled_index: Any, embedder: Any) -> Any:
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    return Assistant.open(settings, store=store, embedder=embedder)


@pytest.fixture(scope="module")
def app_url(bundled_index: Any, bundled_assistant: Any) -> Iterator[str]:
    yield from serve_app(bundled_assistant, bundled_index[0])


SCRATCH_PAPERS = [
    {
        "id": "orig-1",
        "title": "Gradient Tempering for Stable Optimisation",
        "abstract": "We introduce gradient tempering, which rescales gradients by a running temperature to stabilise "
        "optimisation of deep networks. Experiments on image classification show faster convergence.",
        "year": 2021,
    },
    {
        "id": "orig-2",
        "title": "Sparse Routing in Mixture of Experts",
        "abstract": "We study sparse routing functions for mixture-of-experts layers and show that balanced routing "
        "improves throughput. Our router learns expert assignments with a load-balancing loss.",
        "year": 2022,
    },
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[str, Any]]:
    """An app on its own small index, for tests that change the index (the shared bundled index stays as is)."""
    from ingest.pipeline import Ingestor
    from rag.assistant import Assistant
    from rag.settings import Settings
    from rag.store import open_store

    root = tmp_path_factory.mktemp("ui-scratch")
    seed = root / "seed.jsonl"
    seed.write_text("".join(json.dumps(p) + "\n" for p in SCRATCH_PAPERS))
    settings = Settings(data_dir=root / "data", corpus_dir=seed)
    store = open_store(settings)
    assert Ingestor(settings, store, embedder).ingest_paths([seed]).ok
    assistant = Assistant.open(settings, store=store, embedder=embedder)
    for url in serve_app(assistant, settings):
        yield url, assistant


@pytest.mark.slow
def test_page_serves_title_examples_and_mode_line(app_url: str) -> None:
    with urllib.request.urlopen(app_url, timeout=30) as r:
        assert r.status == 200 and "<!doctype html>" in r.read().decode().lower()
    with urllib.request.urlopen(f"{app_url}gradio_api/info", timeout=30) as r:
        endpoints = set(json.load(r)["named_endpoints"])
    assert {"/ask", "/apply_settings", "/vote_up", "/vote_down", "/clear", "/ingest", "/status"} <= endpoints
    with urllib.request.urlopen(f"{app_url}config", timeout=30) as r:
        raw = json.load(r)
    assert raw["title"] == "Paper RAG — ask ML paper abstracts"
    config = json.dumps(raw)
    assert "extractive mode (no LLM configured)" in html.unescape(config)  # the mode line
    assert all(json.dumps(q)[1:-1] in config for q in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("question", [GOOD_Q, *EXAMPLES[1:]])
def test_example_questions_are_answered_with_evidence(app_url: str, question: str) -> None:
    s = Session(app_url).ask(question)
    try:
        assert s.notice == ""
        cited = _cited(s.evidence)
        assert cited and cited[0][0] == 1, s.evidence[:500]
        bubble = _text(s.chat[-1])
        assert '<sup class="cite"' in bubble and "[1]" not in bubble
        assert "<mark>" in s.evidence and _searched(s.searched) == question
        assert s.markdown.startswith(f"**Question:** {question}") and "**References**" in s.markdown
        if question == GOOD_Q:
            assert cited[0][2] == CLUSTER_NS
            assert f"[1] {CLUSTER_NS} — “" in s.markdown
    finally:
        s.close()


@pytest.mark.slow
def test_follow_up_uses_this_sessions_history_only(app_url: str) -> None:
    a, b = Session(app_url), Session(app_url)
    try:
        a.ask("What is ClusterNS?")
        assert _cited(a.evidence)[0][2] == CLUSTER_NS
        a.ask("Which tasks did they evaluate on?")
        assert _searched(a.searched) == f"Which tasks did they evaluate on? ({CLUSTER_NS})"
        assert "your follow-up, made standalone" in a.searched
        assert _cited(a.evidence)[0][2] == CLUSTER_NS
        assert len(a.chat) == 4 and "semantic textual similarity" in _text(a.chat[-1])
        # Another session asking the same follow-up has no history: nothing of A's conversation leaks into it.
        b.ask("Which tasks did they evaluate on?")
        assert _searched(b.searched) == "Which tasks did they evaluate on?"
        assert len(b.chat) == 2
        # "New chat" forgets the history.
        a.client.predict(api_name="/clear")
        a.ask("Which tasks did they evaluate on?")
        assert _searched(a.searched) == "Which tasks did they evaluate on?" and len(a.chat) == 2
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_refusal_is_shown_as_such_with_nearest_papers(app_url: str) -> None:
    s = Session(app_url).ask(OFF_TOPIC_Q)
    try:
        bubble = _text(s.chat[-1])
        assert 'class="ans refusal"' in bubble and "Not answered from the indexed abstracts" in bubble
        assert "<sup" not in bubble
        assert "No supporting evidence" in s.evidence and "Nearest papers (none answers the question)" in s.evidence
        assert _cited(s.evidence) == [] and _papers_shown(s.evidence) >= 1
        assert "**Nearest papers**" in s.markdown
    finally:
        s.close()


@pytest.mark.slow
def test_bad_questions_get_clear_messages_and_the_session_goes_on(app_url: str) -> None:
    s = Session(app_url)
    try:
        s.ask("   ")
        assert "Type a question" in s.notice and s.chat == []
        s.ask("x" * 100_000)
        assert "100,000 characters long; the limit is 4,000" in s.notice and s.chat == []
        s.ask(GOOD_Q)
        assert s.notice == "" and _cited(s.evidence)[0][2] == CLUSTER_NS and len(s.chat) == 2
    finally:
        s.close()


@pytest.mark.slow
def test_settings_are_per_session(app_url: str) -> None:
    a, b = Session(app_url), Session(app_url)
    try:
        mode_line, message = a.settings(k=3, mode="bm25")
        assert "Settings applied: top-k 3, bm25 retrieval." in message and "extractive mode" in mode_line
        _, message = a.settings(k=3, mode="bm25", year_min=2022, year_max=2020)
        assert "Not applied: 'from year' is after 'to year'" in html.unescape(message)  # the previous ones stay
        a.ask(GOOD_Q)
        b.ask(GOOD_Q)
        assert _papers_shown(a.evidence) == 3
        assert _papers_shown(b.evidence) == 6  # the server default (settings.retrieval.k), untouched by A
        _, message = a.settings(year_min=2030)  # the bundled corpus has no years: nothing passes the filter
        assert "years 2030–any" in message
        a.ask(GOOD_Q)
        assert "No supporting evidence" in a.evidence
        b.ask(GOOD_Q)
        assert _cited(b.evidence)[0][2] == CLUSTER_NS
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_api_key_is_never_echoed_logged_or_stored(
    app_url: str, bundled_index: Any, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-test-SECRET-abc123"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    s = Session(app_url)
    try:
        mode_line, message = s.settings(provider="openai-compatible", base_url=dead, model="tiny", api_key=secret)
        assert "Settings applied" in message and f"LLM: openai-compatible tiny at {dead}" in html.unescape(mode_line)
        s.ask(GOOD_Q)  # the LLM is unreachable: a clear message, in the chat and under the input
        assert "unreachable" in s.notice and 'class="ans error"' in _text(s.chat[-1])
        s.ask(OFF_TOPIC_Q)  # refusals never call the LLM
        assert "Not answered" in _text(s.chat[-1])
        s.client.predict(api_name="/vote_down")
        outputs = json.dumps([s.chat, s.evidence, s.searched, s.notice, s.markdown, mode_line, message])
        assert secret not in outputs
    finally:
        s.close()
    feedback = (bundled_index[0].data_dir / "feedback.jsonl").read_text()
    assert secret not in feedback and "api_key" not in feedback
    out, err = capfd.readouterr()
    assert secret not in out + err + caplog.text


@pytest.mark.slow
def test_feedback_is_appended_with_question_answer_citations_vote(app_url: str, bundled_index: Any) -> None:
    path = bundled_index[0].data_dir / "feedback.jsonl"
    before = path.read_text().splitlines() if path.exists() else []
    s = Session(app_url)
    try:
        assert "Ask a question first" in s.client.predict(api_name="/vote_up")
        s.ask(GOOD_Q)
        assert "feedback on the latest answer was recorded" in s.client.predict(api_name="/vote_up")
        s.client.predict(api_name="/vote_down")
    finally:
        s.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()[len(before) :]]
    assert [r["vote"] for r in lines] == ["up", "down"]
    r = lines[0]
    assert r["question"] == GOOD_Q and r["answer"].startswith("3 indexed papers") and not r["refused"]
    assert r["citations"][0]["title"] == CLUSTER_NS and r["citations"][0]["quote"]
    assert set(r) == {"timestamp", "vote", "question", "query", "answer", "refused", "outcome", "mode", "citations"}


@pytest.mark.slow
def test_upload_jsonl_then_its_paper_is_retrievable(scratch: tuple[str, Any], tmp_path: Path) -> None:
    url, assistant = scratch
    upload = tmp_path / "new-papers.jsonl"
    upload.write_text(json.dumps(UPLOADED) + "\n" + json.dumps({"title": "Title Only <b>x</b>"}) + "\n")
    s = Session(url)
    try:
        s.ask("How does origami attention model protein folding?")
        assert all(t != UPLOADED["title"] for _, _, t in _cited(s.evidence))
        result, status = s.upload(upload)
        assert "new-papers.jsonl: 1 paper added or updated" in result
        assert "Rejected (1)" in result and "new-papers.jsonl:2" in result and "&lt;b&gt;" in result
        assert "<strong>3</strong><span>papers</span>" in status
        s.ask("How does origami attention model protein folding?")
        cited = _cited(s.evidence)
        assert cited[0][1:] == ("upl-1", UPLOADED["title"])
        assert 'href="https://example.org/origami"' in s.evidence and "2024" in s.evidence
        s.settings(year_min=2023, categories="q-bio.BM")  # metadata filters reach the uploaded paper's metadata
        s.ask("How does origami attention model protein folding?")
        assert _cited(s.evidence)[0][1] == "upl-1" and _papers_shown(s.evidence) == 1
    finally:
        s.close()
    assert assistant.retriever.store.count() == 3  # one chunk per paper: the 2 seeded + the uploaded one


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("blob.bin", b"\x00\x01\x02\xff" * 64, "unknown format '.bin'"),
        ("binary.jsonl", b'{"title": "x"}\x00\x00\x00' * 20, "binary file (NUL bytes)"),
        ("paper.pdf", b"%PDF-1.7 ...", "PDFs are not supported"),
        ("empty.csv", b"", "file is empty"),
        ("junk.jsonl", b"this is not json\nnor is this\n", "junk.jsonl"),
    ],
)
@pytest.mark.slow
def test_bad_uploads_are_reported_and_nothing_is_lost(
    scratch: tuple[str, Any], tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    url, assistant = scratch
    before = assistant.retriever.store.count()
    path = tmp_path / name
    path.write_bytes(content)
    s = Session(url)
    try:
        result, _ = s.upload(path)
        assert f"{name}: nothing indexed" in result and message in html.unescape(result), result
        assert assistant.retriever.store.count() == before
        s.ask("How does gradient tempering stabilise optimisation?")  # the server still serves
        assert _cited(s.evidence)[0][1] == "orig-1"
    finally:
        s.close()


@pytest.mark.slow
@pytest.mark.llm_server
def test_llm_answers_stream_into_the_chat(app_url: str, llama_server: str) -> None:
    """Per-session LLM settings against a real llama.cpp server: the chat shows the text as it streams."""
    s = Session(app_url)
    try:
        mode_line, _ = s.settings(provider="openai-compatible", base_url=llama_server, model="smollm2")
        assert "LLM: openai-compatible smollm2" in mode_line
        job = s.client.submit("What is ClusterNS?", api_name="/ask")
        updates = []
        for output in job:
            updates.append(output)
        final = job.outputs()[-1]
        chat, evidence = final[0], final[1]
        bubble = _text(chat[-1])
        streamed = [_text(o[0][-1]) for o in job.outputs() if isinstance(o[0], list) and o[0]]
        assert any('class="ans streaming"' in b for b in streamed), streamed[:3]
        assert 'class="ans' in bubble and "streaming" not in bubble
        if "refusal" not in bubble and "error" not in bubble:
            assert isinstance(evidence, str) and "Evidence" in evidence
    finally:
        s.close()


@pytest.mark.slow
def test_launch_indexes_an_empty_index_first_and_serves_behind_the_login_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.settings import Settings
    from ui.app import launch, parse_auth

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in SCRATCH_PAPERS))
    port = free_port()
    app = launch(Settings(data_dir=tmp_path / "data", corpus_dir=corpus), port=port, auth="alice:s3cret", block=False)
    try:
        out = capsys.readouterr().out
        assert "is empty: indexing" in out and "indexed 2/2 papers" in out and "Index ready" in out
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}config", timeout=30)
        assert err.value.code == 401
        s = Session(url, auth=("alice", "s3cret")).ask("How does gradient tempering stabilise optimisation?")
        assert _cited(s.evidence)[0][1] == "orig-1"
        s.close()
        with pytest.raises(Exception):  # noqa: B017 -- gradio_client raises its own error type for a bad login
            Session(url, auth=("alice", "wrong"))
    finally:
        app.close()
    assert parse_auth(None) is None and parse_auth("u:p:q") == ("u", "p:q")
    for bad in ("nocolon", ":p", "u:"):
        with pytest.raises(ValueError, match="user:password"):
            parse_auth(bad)


# --------------------------------------------------------------------------------------------------- load

LOAD = [
    ("Which methods mine hard negatives with clustering for sentence embeddings?", CLUSTER_NS),
    (
        "Which pretrained model analyses DNA sequences?",
        "DNAGPT: A Generalized Pretrained Tool for Multiple DNA Sequence Analysis Tasks",
    ),
    (
        "How can a robot improve its social navigation autonomously with reinforcement learning?",
        "SELFI: Autonomous Self-Improvement with Reinforcement Learning for Social Navigation",
    ),
    (
        "Can neural networks be trained without back-propagation?",
        "NoProp: Training Neural Networks without Back-propagation or Forward-propagation",
    ),
    (
        "How can interpretable directions be discovered in diffusion models without supervision?",
        "NoiseCLR: A Contrastive Learning Approach for Unsupervised Discovery of Interpretable Directions in "
        "Diffusion Models",
    ),
    ("When do curricula help in federated learning?", "When Do Curricula Work in Federated Learning?"),
    (
        "How can textual entailment mitigate stereotypical bias?",
        "Logic Against Bias: Textual Entailment Mitigates Stereotypical Sentence Reasoning",
    ),
    (
        "How does scale learning supervise deep anomaly detection?",
        "Fascinating Supervisory Signals and Where to Find Them: Deep Anomaly Detection with Scale Learning",
    ),
    (
        "How are morphological variations of anatomies learned from point clouds?",
        "Point2SSM: Learning Morphological Variations of Anatomies from Point Cloud",
    ),
    (
        "Can transformers navigate mazes with multi-step prediction?",
        "Transformers Can Navigate Mazes With Multi-Step Prediction",
    ),
    (
        "How can phonemes be recognized zero-shot across languages?",
        "Simple and Effective Zero-shot Cross-lingual Phoneme Recognition",
    ),
    (
        "How is music transcription done with diffusion models?",
        "DiffRoll: Diffusion-based Generative Music Transcription with Unsupervised Pretraining Capability",
    ),
    (
        "How does unsupervised multi-object tracking handle uncertainty?",
        "Uncertainty-aware Unsupervised Multi-Object Tracking",
    ),
    (
        "How are tiny language models trained with a simpler language curriculum?",
        "TinyHelen's First Curriculum: Training and Evaluating Tiny Language Models in a Simpler Language Environment",
    ),
    (
        "Which corpus supports information extraction for solid oxide fuel cell experiments in materials science?",
        "The SOFC-Exp Corpus and Neural Approaches to Information Extraction in the Materials Science Domain",
    ),
    (
        "Which lightweight model does unsupervised word alignment with cross-lingual contrastive learning?",
        "MirrorAlign: A Super Lightweight Unsupervised Word Alignment Model via Cross-Lingual Contrastive Learning",
    ),
    (
        "How can examples be made provably unlearnable via Bayes error?",
        "Towards Provably Unlearnable Examples via Bayes Error Optimisation",
    ),
    (
        "How does representation surgery help multi-task model merging?",
        "Representation Surgery for Multi-Task Model Merging",
    ),
    (
        "How does joint example selection accelerate multimodal learning?",
        "Data curation via joint example selection further accelerates multimodal learning",
    ),
    (
        "How does quality-diversity help learning with sparse rewards?",
        "Learning in Sparse Rewards settings through Quality-Diversity algorithms",
    ),
]


@pytest.mark.slow
def test_twenty_concurrent_sessions(app_url: str, bundled_assistant: Any) -> None:
    """20 sessions at once, each its own gradio_client Client with its own top-k: each asks its own question and
    then a follow-up. Every answer's top citation is that session's paper, every evidence panel shows that
    session's k papers, and every follow-up is rewritten from that session's own history."""
    n = len(LOAD)
    assert n == 20
    sessions = [Session(app_url) for _ in range(n)]
    start = threading.Barrier(n)
    latencies: list[float] = []
    lock = threading.Lock()

    def run(i: int) -> list[str]:
        s, (question, title), k = sessions[i], LOAD[i], 3 + i % 4
        problems: list[str] = []
        s.settings(k=k)
        start.wait(timeout=120)
        for q in (question, "What did they find?"):
            t0 = time.perf_counter()
            s.ask(q)
            with lock:
                latencies.append(time.perf_counter() - t0)
            cited = _cited(s.evidence)
            if q == question and (not cited or cited[0][2] != title):
                problems.append(f"session {i}: top citation {cited[:1]}, expected {title!r}")
            # This session's k, not another's: exactly what retrieving its searched query with its k gives.
            expected = len(bundled_assistant.retrieve(_searched(s.searched), k=k))
            if _papers_shown(s.evidence) != expected or expected < k - 1:
                problems.append(f"session {i}: {_papers_shown(s.evidence)} papers shown, {expected} expected (k={k})")
        if not _searched(s.searched).startswith(f"What did they find? ({title}"):
            problems.append(f"session {i}: follow-up searched {_searched(s.searched)!r}")
        asked = [html.unescape(re.sub(r"<[^>]+>", "", _text(m))) for m in s.chat if m["role"] == "user"]
        if asked != [question, "What did they find?"]:
            problems.append(f"session {i}: chat holds {asked}")
        return problems

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(run, range(n)))
    wall = time.perf_counter() - t0
    problems = [p for r in results for p in r]
    for s in sessions:
        s.close()
    latencies.sort()
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    print(
        f"\nUI load test: {n} sessions x 2 questions = {len(latencies)} answers in {wall:.1f} s "
        f"-> {len(latencies) / wall:.1f} answers/s; latency p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s"
    )
    assert not problems, problems


def test_render_partial_answer_names_what_is_missing() -> None:
    partial = _answer(outcome="partial", missing=f"STS-B {EVIL}")
    bubble = render.answer_html(partial)
    assert 'class="ans partial"' in bubble and "Partly answered: the abstracts do not give STS-B" in bubble
    assert EVIL not in bubble  # the missing detail comes from the question: escaped like everything else
    assert '<sup class="cite"' in bubble  # it still cites the paper it found
    assert 'class="ans answered"' in render.answer_html(_answer())
    panel = render.evidence_html(partial)
    assert 'class="ev-panel partial"' in panel and "Not in the abstracts: STS-B" in panel
    assert "_Partly answered: the abstracts do not give STS-B" in render.answer_markdown(partial)


# --------------------------------------------------------------------------------------------------- export


def test_export_references_writes_the_latest_answers_bibtex_and_csl(tmp_path: Path) -> None:
    from bibtexparser.entrypoint import parse_string

    from rag.assistant import Turn
    from rag.settings import Settings
    from ui.handlers import Handlers
    from ui.session import Chat

    h = Handlers(None, Settings(data_dir=tmp_path))  # type: ignore[arg-type]  # exporting never asks the assistant
    chat = Chat()
    assert h.export_references(chat) == (None, None)  # nothing asked yet: the buttons download nothing
    answer = _answer()
    chat.add(Turn(answer.question, answer), "", "")
    bib, csl = h.export_references(chat)
    assert bib is not None and csl is not None
    assert (Path(bib).name, Path(csl).name) == ("references.bib", "references-csl.json")
    library = parse_string(Path(bib).read_text(encoding="utf-8"))
    assert library.failed_blocks == [] and [e.key for e in library.entries] == ["evil-1"]  # cited papers only
    assert library.entries[0].fields_dict["title"].value.startswith("Title Evil <img")
    assert [i["id"] for i in json.loads(Path(csl).read_text(encoding="utf-8"))] == ["evil-1"]
    assert h.export_references(chat) == (bib, csl)  # same answer, same files
    refused = replace(answer, outcome="refused", citations=[])
    chat.add(Turn(refused.question, refused), "", "")
    assert h.export_references(chat) == (None, None)


@pytest.mark.slow  # serves the app on the real model and bundled index
def test_download_buttons_get_the_answers_references(app_url: str) -> None:
    s = Session(app_url).ask(GOOD_Q)
    try:
        bib, csl = s.client.predict(api_name="/export_references")
        text = Path(bib).read_text(encoding="utf-8")
        assert text.startswith("@misc{clustering-aware-negative-sampling") and f"title = {{{CLUSTER_NS}}}" in text
        assert json.loads(Path(csl).read_text(encoding="utf-8"))[0]["title"] == CLUSTER_NS
        s.client.predict(api_name="/clear")
        assert s.client.predict(api_name="/export_references") == (None, None)
    finally:
        s.close()
