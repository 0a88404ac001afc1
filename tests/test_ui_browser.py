"""The UI in a real browser: Debian's headless Chromium driven by Playwright. Asks through the page, checks the
citation badges and the evidence panel, that hostile paper text never executes, and the layout at laptop and
phone widths; screenshots go to test-artifacts/.

Chromium comes from `apt-get install chromium` (CI installs it); a missing browser fails these tests, it does
not skip them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serve_app

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CLUSTER_NS = "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation"
GOOD_Q = "Which methods mine hard negatives with clustering for sentence embeddings?"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}

# Every way a paper could try to run script in the page; each sets window.__xss if it ever executes.
XSS_TITLE = 'Markup Robust Tokenizers <img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
XSS_ABSTRACT = (
    "We study markup robust tokenizers for adversarial inputs. "
    '<img src=x onerror="window.__xss=3"> <svg onload="window.__xss=4"></svg> <script>window.__xss=5</script> '
    "Our tokenizer ignores [a link](javascript:window.__xss=6) and ${window.__xss=7} and "
    "{{constructor.constructor('window.__xss=8')()}} and <a href=\"javascript:window.__xss=9\">this</a>. "
    "Markup robust tokenizers resist injection attacks on every benchmark we tried."
)
# No digits in the question: the extractive answerer scores a sentence 0 when it lacks a number the question has.
XSS_QUESTION = "How do markup robust tokenizers resist injection? <img src=x onerror=\"window.__xss='q'\">"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def app_url(bundled_index: Any, embedder: Any) -> Iterator[str]:
    from rag.assistant import Assistant

    settings, store, _ = bundled_index
    yield from serve_app(Assistant.open(settings, store=store, embedder=embedder), settings)


@pytest.fixture(scope="module")
def xss_url(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[str]:
    """An app on its own index holding a hostile paper (and a harmless one)."""
    from ingest.pipeline import Ingestor
    from rag.assistant import Assistant
    from rag.settings import Settings
    from rag.store import open_store

    root = tmp_path_factory.mktemp("ui-xss")
    papers = [
        {"id": "xss-1", "title": XSS_TITLE, "abstract": XSS_ABSTRACT, "year": 2024, "url": "javascript:alert(1)"},
        {
            "id": "ok-1",
            "title": "Gradient Tempering for Stable Optimisation",
            "abstract": "We introduce gradient tempering, which rescales gradients by a running temperature to "
            "stabilise optimisation of deep networks. Experiments show faster convergence.",
        },
    ]
    corpus = root / "papers.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in papers))
    settings = Settings(data_dir=root / "data", corpus_dir=corpus)
    store = open_store(settings)
    assert Ingestor(settings, store, embedder).ingest_paths([corpus]).ok
    yield from serve_app(Assistant.open(settings, store=store, embedder=embedder), settings)


def _open(browser: Any, url: str, viewport: dict[str, int]) -> tuple[Any, list[str]]:
    """A new page at ``url`` once the app has rendered, and the list its uncaught script errors go to."""
    page = browser.new_page(viewport=viewport, permissions=["clipboard-read", "clipboard-write"])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url, wait_until="load")
    page.wait_for_selector("#question textarea", timeout=60_000)
    return page, errors


def _ask(page: Any, question: str) -> None:
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    # The answer has arrived when the evidence panel is no longer the empty placeholder.
    page.wait_for_selector("#evidence .ev-panel:not(.ev-empty)", timeout=60_000)
    page.wait_for_timeout(300)


def _no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def test_ask_in_the_browser_shows_badges_and_evidence(browser: Any, app_url: str) -> None:
    page, errors = _open(browser, app_url, LAPTOP)
    try:
        assert page.title().startswith("Paper RAG")
        assert page.locator("#app-header h1").inner_text().strip().endswith("Paper RAG")
        assert "extractive mode (no LLM configured)" in page.locator("#mode-line").inner_text()
        assert page.get_by_text("Can neural networks be trained without back-propagation?").is_visible()
        page.screenshot(path=str(ARTIFACTS / "ui-home.png"))
        _ask(page, GOOD_Q)
        badges = page.locator("#chat sup.cite")
        assert badges.count() >= 3 and badges.first.is_visible()
        assert badges.first.inner_text().strip() == "1"
        assert badges.first.get_attribute("title") == CLUSTER_NS  # the badge names its paper
        assert "[1]" not in page.locator("#chat").inner_text()
        first = page.locator("#evidence article.ev-card.cited").first
        assert first.locator(".ev-title").inner_text() == CLUSTER_NS
        assert "ClusterNS" in first.locator("mark").inner_text()
        assert "support" in first.locator(".ev-meta").inner_text()
        more = page.locator("#evidence details.ev-more")
        assert more.count() == 1 and more.get_attribute("open") is None  # uncited papers: collapsed
        assert "Searched for" in page.locator("#searched").inner_text()
        assert _no_horizontal_scroll(page)
        # Show the question and the start of the answer (the chat scrolls to its end as the answer arrives).
        page.evaluate("window.scrollTo(0, 0); document.querySelectorAll('#chat *').forEach(e => { e.scrollTop = 0; })")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "ui-answer-laptop.png"))
        page.locator("#vote-up").click()
        page.wait_for_selector("#notice .notice-ok", timeout=30_000)
        page.locator("#copy-md").click()  # the answer with its references, as Markdown, on the clipboard
        page.wait_for_function("navigator.clipboard.readText().then(t => t.includes('**References**'))")
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith(f"**Question:** {GOOD_Q}") and f"[1] {CLUSTER_NS} — “" in copied
        # Follow-up in the same page: the searched query is rewritten from this conversation.
        _ask_follow_up(page, "Which tasks did they evaluate on?")
        assert CLUSTER_NS in page.locator("#searched").inner_text()
        assert errors == []
    finally:
        page.close()


def _ask_follow_up(page: Any, question: str) -> None:
    before = page.locator("#chat .ans").count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('#chat .ans:not(.pending)').length > {before}", timeout=60_000)
    page.wait_for_timeout(300)


def test_each_outcome_looks_different(browser: Any, app_url: str) -> None:
    """Answered, partial (the paper found, the detail not in its abstract) and refused, in one conversation."""
    page, errors = _open(browser, app_url, LAPTOP)
    try:
        _ask(page, GOOD_Q)
        _ask_follow_up(page, "What Spearman correlation on STS-B alone does SimCSE report with BERT-base?")
        _ask_follow_up(page, "How many players does a volleyball team field?")
        bubbles = page.locator("#chat .ans:not(.pending)")
        classes = [bubbles.nth(i).get_attribute("class") or "" for i in range(bubbles.count())]
        assert ["answered" in classes[0], "partial" in classes[1], "refusal" in classes[2]] == [True, True, True]
        partial = bubbles.nth(1)
        assert "Partly answered: the abstracts do not give" in partial.inner_text() and "STS-B" in partial.inner_text()
        assert partial.locator("sup.cite").count() >= 1  # a partial answer still cites the paper it found
        assert "Not answered from the indexed abstracts" in bubbles.nth(2).inner_text()
        colours = [bubbles.nth(i).evaluate("e => getComputedStyle(e).borderLeftColor") for i in range(3)]
        assert len(set(colours[1:])) == 2  # partial and refused are told apart at a glance
        partial.scroll_into_view_if_needed()  # the partial and the refused bubble, one under the other
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "ui-outcomes.png"))
        assert errors == []
    finally:
        page.close()


def test_phone_width_layout(browser: Any, app_url: str) -> None:
    page, _ = _open(browser, app_url, PHONE)
    try:
        assert _no_horizontal_scroll(page)
        page.get_by_text(GOOD_Q).click()  # an example question from the empty chat: asked at once
        page.wait_for_selector("#evidence .ev-panel:not(.ev-empty)", timeout=60_000)
        assert page.locator("#chat sup.cite").first.is_visible()
        assert _no_horizontal_scroll(page)
        chat, evidence = page.locator("#chat").bounding_box(), page.locator("#evidence").bounding_box()
        assert evidence["y"] >= chat["y"] + chat["height"] - 1  # stacked, evidence below the chat
        assert evidence["width"] > PHONE["width"] * 0.8
        page.screenshot(path=str(ARTIFACTS / "ui-answer-phone.png"), full_page=True)
    finally:
        page.close()


def test_settings_apply_to_this_page_and_the_key_is_never_shown(browser: Any, app_url: str) -> None:
    secret = "sk-browser-SECRET-42"
    page, errors = _open(browser, app_url, LAPTOP)
    try:
        page.get_by_text("Settings (this browser session only)").click()
        _set_top_k(page, 3)
        page.locator("#llm-provider input").click()
        page.get_by_role("option", name="openai-compatible").click()
        page.wait_for_selector("#settings-notice .notice-error", timeout=30_000)
        assert "needs a base URL" in page.locator("#settings-notice").inner_text()
        page.locator("#base-url textarea").fill("http://127.0.0.1:9/v1")
        key = page.locator("#api-key input")
        assert key.get_attribute("type") == "password"
        key.fill(secret)
        page.wait_for_function(
            "document.querySelector('#mode-line').innerText.includes('LLM: openai-compatible')", timeout=30_000
        )
        assert "http://127.0.0.1:9/v1" in page.locator("#mode-line").inner_text()
        assert secret not in page.locator("body").inner_text()
        page.locator("#llm-provider input").click()
        page.get_by_role("option", name="none").click()
        page.wait_for_function(
            "document.querySelector('#mode-line').innerText.includes('extractive mode')", timeout=30_000
        )
        assert "top-k 3," in page.locator("#settings-notice").inner_text()  # every later apply kept it
        _ask(page, GOOD_Q)
        assert page.locator("#evidence article.ev-card").count() == 3  # this page's top-k
        assert secret not in page.content()
        assert errors == []
    finally:
        page.close()
    # Another page (another session) still has the server's defaults.
    other, _ = _open(browser, app_url, LAPTOP)
    try:
        _ask(other, GOOD_Q)
        assert other.locator("#evidence article.ev-card").count() == 6
    finally:
        other.close()


def _set_top_k(page: Any, k: int) -> None:
    """Type ``k`` into the top-k box until the settings notice says it is in effect.

    Typing within ~100 ms of opening the accordion can be undone: the slider, still mounting, writes its initial
    value back over the typed one and applies that (seen in 4 of 15 scripted tries, never with a 500 ms pause,
    which no person typing beats). The notice names the top-k in effect, so the test waits on that, not a sleep."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    k_box = page.locator("#top-k input[type=number]")
    for _ in range(3):
        k_box.fill(str(k))
        k_box.press("Enter")
        try:
            page.wait_for_function(
                f"document.querySelector('#settings-notice').innerText.includes('top-k {k},')", timeout=5_000
            )
            return
        except PlaywrightTimeout:
            continue  # undone while mounting: type it again
    raise AssertionError(f"top-k {k} never took effect: {page.locator('#settings-notice').inner_text()!r}")


def test_bad_question_shows_a_message_in_the_page(browser: Any, app_url: str) -> None:
    page, errors = _open(browser, app_url, LAPTOP)
    try:
        page.locator("#question textarea").fill("   ")
        page.locator("#question textarea").press("Enter")
        page.wait_for_selector("#notice .notice-error", timeout=30_000)
        assert "Type a question" in page.locator("#notice").inner_text()
        page.locator("#question textarea").fill("y" * 100_000)
        page.locator("#question textarea").press("Enter")
        page.wait_for_function(
            "document.querySelector('#notice').innerText.includes('the limit is 4,000')", timeout=30_000
        )
        _ask(page, GOOD_Q)  # and the page still answers
        assert page.locator("#notice .notice").count() == 0
        assert errors == []
    finally:
        page.close()


def test_hostile_paper_text_never_executes(browser: Any, xss_url: str) -> None:
    page, errors = _open(browser, xss_url, LAPTOP)
    try:
        _ask(page, XSS_QUESTION)
        page.wait_for_timeout(1000)  # time for any injected handler to fire
        assert page.evaluate("typeof window.__xss") == "undefined"
        title = page.locator("#evidence article.ev-card").first.locator(".ev-title").inner_text()
        assert title == XSS_TITLE  # shown as text, exactly
        evidence = page.locator("#evidence").inner_text()
        assert '<img src=x onerror="window.__xss=3">' in evidence and "[a link](javascript:" in evidence
        assert "<img src=x onerror=\"window.__xss='q'\">" in page.locator("#chat").inner_text()
        # The hostile paper is cited: its title in a badge tooltip, its abstract quoted in the chat and highlighted.
        assert page.locator("#chat sup.cite").first.get_attribute("title") == XSS_TITLE
        assert "Markup robust tokenizers resist injection attacks" in page.locator("#evidence mark").first.inner_text()
        for selector in ("img[src='x']", "svg[onload]", "script:not([src])", "a[href^='javascript']", "[onerror]"):
            hostile = page.locator(f"#chat {selector}, #evidence {selector}")
            assert hostile.count() == 0, selector
        page.screenshot(path=str(ARTIFACTS / "ui-xss.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


def test_upload_in_the_browser_reports_bad_records_safely(browser: Any, xss_url: str, tmp_path: Path) -> None:
    upload = tmp_path / "hostile <img src=x onerror=window.__xss=11>.jsonl"
    records = [
        {"id": "up-1", "title": "Lattice Sketches for Streaming Graphs", "abstract": "We maintain lattice sketches "
         "of streaming graphs so that reachability queries are answered in constant time with small error."},
        {"title": '<img src=x onerror="window.__xss=12"> title only'},
    ]  # fmt: skip
    upload.write_text("".join(json.dumps(r) + "\n" for r in records))
    page, errors = _open(browser, xss_url, LAPTOP)
    try:
        page.get_by_role("tab", name="Corpus").click()
        page.wait_for_selector("#corpus-status .stat", timeout=30_000)
        page.locator("#upload input[type=file]").set_input_files(str(upload))
        page.wait_for_timeout(500)
        page.locator("#ingest").click()
        page.wait_for_selector("#ingest-result .ingest-result", timeout=120_000)
        result = page.locator("#ingest-result").inner_text()
        assert "1 paper added or updated" in result and "Rejected (1)" in result
        assert "onerror=window.__xss=11.jsonl" in result  # Gradio strips < > from upload names
        assert """missing abstract (title-only entry): '<img src=x onerror="window.__xss=12"> title only'""" in result
        assert "papers" in page.locator("#corpus-status").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ui-corpus.png"), full_page=True)
        page.get_by_role("tab", name="Ask").click()
        _ask(page, "How are reachability queries answered on streaming graphs?")
        assert "Lattice Sketches for Streaming Graphs" in page.locator("#evidence .ev-card.cited").first.inner_text()
        assert page.evaluate("typeof window.__xss") == "undefined"
        assert errors == []
    finally:
        page.close()
