"""The Gradio app: layout and event wiring (``build_app``) and serving it (``launch``, ``serve``).

>>> from ui.app import launch
>>> launch(Settings(), port=7860, auth="alice:secret")     # what `rag ui` runs; blocks until Ctrl-C

What each event does lives in ``ui.handlers``; the HTML in ``ui.render``; per-session state in ``ui.session``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from ingest.formats import FORMATS
from rag.assistant import Assistant
from rag.settings import LLM_PROVIDERS, Settings
from rag.types import Mode
from ui import render
from ui.content import DESCRIPTION, EXAMPLES, TITLE
from ui.handlers import AUTO_FORMAT, KEEP, Handlers
from ui.session import MAX_K, Chat, Prefs
from ui.theme import COPY_JS, CSS, theme

__all__ = ["ASK_CONCURRENCY", "build_app", "launch", "parse_auth", "serve"]

ASK_CONCURRENCY = 4  # answers computed at once; the rest wait in Gradio's queue
MAX_UPLOAD = "50mb"


def build_app(assistant: Assistant, settings: Settings, *, exposed: bool = False) -> gr.Blocks:
    """The UI for ``assistant``: an Ask tab (chat, evidence, settings) and a Corpus tab (status, upload).
    ``exposed``: it will be served beyond loopback (session LLM URLs are then checked harder, rag.exposure)."""
    h = Handlers(assistant, settings, exposed)
    defaults = Prefs.defaults(settings)
    app: gr.Blocks
    with gr.Blocks(title=f"{TITLE} — ask ML paper abstracts", analytics_enabled=False) as app:
        prefs = gr.State(defaults)
        chat = gr.State(Chat())
        gr.HTML(
            f'<div id="app-header"><h1><span class="logo">📚</span>{TITLE}</h1><p>{render.esc(DESCRIPTION)}</p></div>',
            elem_id="header",
        )
        mode_line = gr.HTML(render.mode_html(assistant.mode_note), elem_id="mode-line")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=340):
                        chatbot = gr.Chatbot(
                            value=[],
                            show_label=False,
                            elem_id="chat",
                            height=540,
                            buttons=[],
                            feedback_options=None,
                            placeholder="**Ask about the indexed papers.** Try one of these:",
                            examples=[{"text": q} for q in EXAMPLES],
                        )
                        question = gr.Textbox(
                            show_label=False,
                            placeholder="Ask a question about the papers, e.g. which methods do X? (Enter to send)",
                            lines=1,
                            max_lines=6,
                            submit_btn="Ask",
                            elem_id="question",
                            autofocus=True,
                        )
                        notice = gr.HTML("", elem_id="notice")
                        searched = gr.HTML("", elem_id="searched")
                        with gr.Row(elem_id="actions"):
                            up = gr.Button("👍 Helpful", size="sm", variant="secondary", elem_id="vote-up")
                            down = gr.Button("👎 Not helpful", size="sm", variant="secondary", elem_id="vote-down")
                            copy = gr.Button("📋 Copy as Markdown", size="sm", variant="secondary", elem_id="copy-md")
                            # Filled after each answer (a DownloadButton saves the file it already holds).
                            bib = gr.DownloadButton("⬇ BibTeX", size="sm", variant="secondary", elem_id="export-bib")
                            csl = gr.DownloadButton("⬇ CSL-JSON", size="sm", variant="secondary", elem_id="export-csl")
                            clear = gr.Button("🗑 New chat", size="sm", variant="secondary", elem_id="clear")
                    with gr.Column(scale=2, min_width=300):
                        evidence = gr.HTML(render.evidence_html(None), elem_id="evidence")
                with gr.Accordion("Answer as Markdown", open=False):
                    markdown = gr.Textbox(
                        show_label=False, lines=6, max_lines=20, interactive=False, buttons=["copy"], elem_id="markdown"
                    )
                with gr.Accordion("Settings (this browser session only)", open=False, elem_id="settings"):
                    with gr.Row():
                        k = gr.Slider(
                            1, MAX_K, value=defaults.k, step=1, label="Papers retrieved (top-k)", elem_id="top-k"
                        )
                        mode = gr.Radio([m.value for m in Mode], value=defaults.mode, label="Retrieval mode")
                    with gr.Row():
                        year_min = gr.Number(
                            None, label="From year", precision=0, placeholder="any", elem_id="year-min"
                        )
                        year_max = gr.Number(None, label="To year", precision=0, placeholder="any", elem_id="year-max")
                        categories = gr.Textbox(label="Categories (any of)", placeholder="e.g. cs.CL, cs.LG")
                    with gr.Row():
                        provider = gr.Dropdown(
                            list(LLM_PROVIDERS),
                            value=settings.llm.provider,
                            label="LLM provider",
                            elem_id="llm-provider",
                        )
                        model = gr.Textbox(settings.llm.model, label="LLM model")
                        base_url = gr.Textbox(
                            settings.llm.base_url or "",
                            label="Base URL",
                            placeholder="http://127.0.0.1:8080/v1",
                            elem_id="base-url",
                        )
                    with gr.Row():
                        api_key = gr.Textbox(
                            "",
                            label="API key",
                            type="password",
                            placeholder="blank: the server's key, if any",
                            elem_id="api-key",
                        )
                        temperature = gr.Slider(0.0, 2.0, value=settings.llm.temperature, step=0.1, label="Temperature")
                    settings_notice = gr.HTML("", elem_id="settings-notice")
            with gr.Tab("Corpus", id="corpus"):
                status = gr.HTML("", elem_id="corpus-status")
                with gr.Row(equal_height=False):
                    upload = gr.File(
                        label="Add papers: JSONL, JSON, CSV/TSV, arXiv snapshot, BEIR corpus or scraped .txt pages",
                        file_count="single",
                        type="filepath",
                        elem_id="upload",
                        scale=3,
                    )
                    with gr.Column(scale=1, min_width=200):
                        fmt = gr.Dropdown([AUTO_FORMAT, *FORMATS], value=AUTO_FORMAT, label="Format")
                        ingest = gr.Button("Ingest file", variant="primary", elem_id="ingest")
                ingest_result = gr.HTML("", elem_id="ingest-result")

        ask_outputs = [chatbot, evidence, searched, notice, markdown, question, chat]
        export_kw: dict[str, Any] = {"concurrency_limit": None, "show_progress": "hidden"}
        ask = _streamed(h.ask)
        question.submit(
            ask,
            [question, prefs, chat],
            ask_outputs,
            api_name="ask",
            concurrency_limit=ASK_CONCURRENCY,
            concurrency_id="ask",
            show_progress="hidden",
        ).then(h.export_references, chat, [bib, csl], api_name="export_references", **export_kw)
        chatbot.example_select(_example_text, None, question, api_visibility="private", queue=False).then(
            h.ask,
            [question, prefs, chat],
            ask_outputs,
            concurrency_id="ask",
            show_progress="hidden",
            api_visibility="private",
        ).then(h.export_references, chat, [bib, csl], api_visibility="private", **export_kw)
        setting_inputs: list[Any] = [k, mode, year_min, year_max, categories]
        setting_inputs += [provider, model, base_url, api_key, temperature]
        gr.on(
            [c.change for c in setting_inputs],
            _plain(h.apply_settings),
            [prefs, *setting_inputs],
            [prefs, mode_line, settings_notice],
            api_name="apply_settings",
            trigger_mode="always_last",
            show_progress="hidden",
            # One at a time, in submission order: concurrent applies could finish out of order, and an older one
            # (e.g. from typing the API key) would overwrite the newer prefs. Each takes microseconds.
            concurrency_limit=1,
            concurrency_id="settings",
        )
        up.click(h.vote_up, chat, notice, api_name="vote_up", concurrency_limit=None)
        down.click(h.vote_down, chat, notice, api_name="vote_down", concurrency_limit=None)
        copy.click(None, markdown, None, js=COPY_JS)
        for cleared in (
            clear.click(h.clear, None, ask_outputs, api_name="clear", concurrency_limit=None),
            chatbot.clear(h.clear, None, ask_outputs, api_visibility="private", concurrency_limit=None),
        ):
            cleared.then(h.export_references, chat, [bib, csl], api_visibility="private", **export_kw)

        def ingest_upload(file: str | None, fmt: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 -- how Gradio injects its progress bar
            def report(done: int, total: int) -> None:
                progress((done, total), desc="Embedding and indexing", unit="papers")

            return _gradio_values(h.ingest(file, fmt, report))

        ingest.click(
            ingest_upload,
            [upload, fmt],
            [ingest_result, status],
            api_name="ingest",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        app.load(h.status, None, status, api_name="status", show_progress="hidden")
    return app


def _gradio_values(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(gr.skip() if v is KEEP else v for v in values)


def _plain(handler: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
    """``handler`` as Gradio calls it: its ``KEEP`` values become ``gr.skip()`` (wraps keeps its signature, from
    which Gradio counts the inputs)."""

    @functools.wraps(handler)
    def call(*args: Any) -> tuple[Any, ...]:
        return _gradio_values(handler(*args))

    return call


def _streamed(handler: Callable[..., Iterator[tuple[Any, ...]]]) -> Callable[..., Iterator[tuple[Any, ...]]]:
    """A streaming ``handler`` as Gradio calls it (a generator function, so Gradio streams it)."""

    @functools.wraps(handler)
    def call(*args: Any) -> Iterator[tuple[Any, ...]]:
        for values in handler(*args):
            yield _gradio_values(values)

    return call


def _example_text(evt: gr.SelectData) -> str:
    value: Any = evt.value
    return str(value.get("text", "")) if isinstance(value, dict) else str(value)


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """``"user:pass"`` -> ("user", "pass"); None stays None. ValueError for anything else."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must be given as user:password")
    return user, password


def serve(
    app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None, block: bool = True
) -> str:
    """Enable the queue and serve ``app``; returns its local URL (``block=False``: serve in the background)."""
    app.queue(default_concurrency_limit=ASK_CONCURRENCY)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message=f"{TITLE}: sign in to ask the indexed papers." if auth else None,
        prevent_thread_lock=not block,
        share=False,
        show_error=False,
        quiet=not block,
        theme=theme(),
        css=CSS,
        footer_links=["api"],
        max_file_size=MAX_UPLOAD,
        run_history=False,
        enable_monitoring=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
    )
    return str(url)


def launch(
    settings: Settings | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    *,
    block: bool = True,
    expose_without_auth: bool = False,
) -> gr.Blocks:
    """Build the clients from ``settings``, index the bundled corpus on first launch, and serve the UI at
    http://host:port (127.0.0.1 unless told otherwise), behind Gradio's login form when ``auth`` is
    "user:password". A non-loopback ``host`` needs ``auth`` or ``expose_without_auth=True`` (ExposureError)."""
    from ingest.live import ensure_index
    from rag.embeddings import build_embedder
    from rag.exposure import check_bind, is_loopback_host
    from rag.store import open_store

    credentials = parse_auth(auth)
    check_bind(host, credentials is not None, expose_without_auth)  # before anything is loaded or indexed
    settings = settings or Settings()
    store = open_store(settings)
    embedder = build_embedder(settings.embedding, settings.models_dir)
    ensure_index(settings, store, embedder, echo=print)
    assistant = Assistant.open(settings, store=store, embedder=embedder, ingest_if_empty=False)
    app = build_app(assistant, settings, exposed=not is_loopback_host(host))
    serve(app, host, port, credentials, block=block)
    return app
