"""What the UI's events do: each method takes component values (and session state) and returns component values.

All answering goes through ``Assistant.stream``; all HTML comes from ``ui.render``. Errors the user can fix
(empty or too-long question, bad settings, a failing LLM, a bad upload) come back as messages in the page, never
as exceptions: the server keeps serving and the session keeps its state.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any

from ingest.live import ingest_file
from rag.answer import Answer
from rag.assistant import MAX_QUESTION_CHARS, Assistant, Turn
from rag.ingest_lock import IngestLockedError
from rag.settings import Settings
from rag.text_normalize import normalize_text
from ui import render
from ui.corpus import index_status
from ui.feedback import Vote, record_feedback
from ui.session import Chat, Prefs, prefs_from_inputs

__all__ = ["AUTO_FORMAT", "EXPORT_FILES", "KEEP", "Handlers", "Keep"]

log = logging.getLogger(__name__)

AUTO_FORMAT = "auto-detect"
EXPORT_FILES = ("references.bib", "references-csl.json")  # what the two download buttons save
_STREAM_EVERY = 0.05  # seconds between Chatbot refreshes while an LLM streams


class Keep(Enum):
    """A returned value that leaves its component as it is. ``ui.app`` hands Gradio ``gr.skip()`` for it: the
    handlers stay free of the UI library, so their tests run in the fast loop without importing it."""

    KEEP = "keep"


KEEP = Keep.KEEP

# (chatbot messages, evidence, searched query, notice, markdown, question box, chat state)
AskOutputs = tuple[Any, Any, Any, Any, Any, Any, Chat]


class Handlers:
    """Event handlers bound to one Assistant (shared by all sessions) and its Settings."""

    def __init__(self, assistant: Assistant, settings: Settings, exposed: bool = False) -> None:
        self.assistant = assistant
        self.settings = settings
        self.exposed = exposed  # served beyond loopback: session LLM URLs are checked harder (rag.exposure)

    # ------------------------------------------------------------------------------------------- ask

    def ask(self, question: str | None, prefs: Prefs, chat: Chat) -> Iterator[AskOutputs]:
        """Stream one answer into the chat; the final yield carries the evidence, query line and Markdown."""
        # The assistant normalises too; doing it here first keeps a lone surrogate out of the page (and its JSON).
        q = normalize_text(question or "").text.strip()
        problem = ""
        if not q:
            problem = "Type a question about the indexed papers first."
        elif len(q) > MAX_QUESTION_CHARS:
            problem = (
                f"That question is {len(q):,} characters long; the limit is {MAX_QUESTION_CHARS:,}. "
                "Ask about one thing at a time."
            )
        if problem:
            yield self._unchanged(chat, render.notice_html(problem))
            return
        try:
            llm, extractive = prefs.llm_call()
        except ValueError as exc:
            yield self._unchanged(chat, render.notice_html(f"LLM settings: {exc}"))
            return
        user = render.question_html(q)
        shown = [*chat.messages, {"role": "user", "content": user}]
        yield ([*shown, _bot(render.pending_html())], KEEP, KEEP, "", KEEP, "", chat)
        events = self.assistant.stream(
            q,
            k=prefs.k,
            mode=prefs.mode,
            filters=prefs.filters(),
            history=chat.turns,
            llm=llm,
            extractive=extractive,
        )
        answer: Answer | None = None
        partial, last = "", 0.0
        try:
            for event in events:
                if isinstance(event, Answer):
                    answer = event
                    break
                partial += event
                if time.monotonic() - last >= _STREAM_EVERY:
                    last = time.monotonic()
                    yield ([*shown, _bot(render.pending_html(partial))], *_skip(5), chat)
        except Exception as exc:  # any failure becomes a message; the session goes on
            message = self._failure(exc)
            chat.messages = [*shown, _bot(render.error_html(message))]
            yield (chat.messages, *_skip(2), render.notice_html(message), KEEP, KEEP, chat)
            return
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        assert answer is not None  # Assistant.stream always ends with the Answer
        chat.add(Turn(q, answer), user, render.answer_html(answer))
        yield (
            chat.messages,
            render.evidence_html(answer),
            render.query_html(answer),
            "",
            render.answer_markdown(answer),
            KEEP,
            chat,
        )

    def _unchanged(self, chat: Chat, notice: str) -> AskOutputs:
        return (KEEP, KEEP, KEEP, notice, KEEP, KEEP, chat)

    def _failure(self, exc: BaseException) -> str:
        from rag.llms import LLMError

        if isinstance(exc, LLMError | ValueError):
            return str(exc)
        log.exception("answering failed")
        return f"Something went wrong while answering ({type(exc).__name__}); please try again."

    def clear(self) -> AskOutputs:
        return ([], render.evidence_html(None), "", "", "", "", Chat())

    def export_references(self, chat: Chat) -> tuple[str | None, str | None]:
        """(BibTeX file, CSL-JSON file) of the latest answer's cited papers, for the two download buttons;
        (None, None) before any answer or when it cites nothing (the buttons then download nothing)."""
        answer = chat.turns[-1].answer if chat.turns else None
        if answer is None or not answer.citations:
            return None, None
        bib_name, csl_name = EXPORT_FILES
        return _export_file(bib_name, answer.to_bibtex()), _export_file(csl_name, answer.to_csl_json())

    # ------------------------------------------------------------------------------------------- settings

    def apply_settings(
        self,
        prefs: Prefs,
        k: float,
        mode: str,
        year_min: float | None,
        year_max: float | None,
        categories: str,
        provider: str,
        model: str,
        base_url: str,
        api_key: str,
        temperature: float,
    ) -> tuple[Prefs, str | Keep, str]:
        """(session prefs, mode line, settings message). Invalid input keeps the previous prefs."""
        try:
            new = prefs_from_inputs(
                self.settings,
                k,
                mode,
                year_min,
                year_max,
                categories,
                provider,
                model,
                base_url,
                api_key,
                temperature,
                self.exposed,
            )
        except ValueError as exc:
            return prefs, KEEP, render.notice_html(f"Not applied: {exc}")
        return (
            new,
            render.mode_html(new.mode_note(self.assistant.mode_note)),
            render.notice_html(f"Settings applied: {new.summary()}.", "ok"),
        )

    # ------------------------------------------------------------------------------------------- feedback

    def vote(self, chat: Chat, vote: Vote) -> str:
        if not chat.turns:
            return render.notice_html("Ask a question first; feedback applies to the latest answer.", "warn")
        record_feedback(self.settings.data_dir / "feedback.jsonl", chat.turns[-1].answer, vote)
        return render.notice_html("Thanks, your feedback on the latest answer was recorded.", "ok")

    def vote_up(self, chat: Chat) -> str:
        return self.vote(chat, "up")

    def vote_down(self, chat: Chat) -> str:
        return self.vote(chat, "down")

    # ------------------------------------------------------------------------------------------- corpus

    def status(self) -> str:
        s = index_status(self.assistant)
        return render.status_html(s.papers, s.chunks, s.model, s.where)

    def ingest(
        self, file: str | None, fmt: str, progress: Callable[[int, int], None] | None = None
    ) -> tuple[str, str | Keep]:
        """Ingest one uploaded file; (result, index status). ``progress(done, total)`` follows the embedding."""
        if not file:
            return render.notice_html("Choose a file to upload first."), KEEP
        path = Path(file)

        def report_progress(done: int, total: int) -> None:
            if total and progress is not None:
                progress(done, total)

        try:
            report = ingest_file(self.assistant, path, None if fmt == AUTO_FORMAT else fmt, report_progress)
        except IngestLockedError as exc:
            return render.notice_html(str(exc)), KEEP
        except Exception as exc:  # a broken upload must not take the server down
            log.exception("ingest failed")
            return render.notice_html(f"{path.name}: could not be ingested ({type(exc).__name__})."), KEEP
        added = report.new + report.updated + report.repaired
        summary = report.summary() if report.seen else "no readable paper records in this file"
        return render.ingest_html(path.name, summary, report.rejected, added), self.status()


def _bot(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _skip(n: int) -> tuple[Any, ...]:
    return (KEEP,) * n


def _export_file(name: str, text: str) -> str:
    """Write ``text`` as ``name`` in a folder named for its content, under the system temp dir (where Gradio may
    serve files from): concurrent sessions never overwrite each other's file, and the download keeps the name."""
    data = text.encode("utf-8")
    folder = Path(tempfile.gettempdir()) / "paper-rag-exports" / hashlib.sha1(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        tmp = folder / f".{name}.{time.monotonic_ns()}"
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a concurrent download never reads half a file
    return str(path)
