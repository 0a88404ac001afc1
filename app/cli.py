"""The `rag` command line: `rag ui`, `ingest`, `ask`, `chat`, `eval`, `status`, `serve` and `mcp`."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from ingest.formats import FORMATS
from rag.settings import Settings
from rag.text_normalize import normalize_text
from rag.types import Mode

__all__ = ["main"]

EXIT_OK, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    return Settings.load(args.config, **overrides)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ingest.pipeline import Ingestor
    from rag.ingest_lock import ingest_lock
    from rag.store import open_store

    settings = _settings(args)
    paths = args.paths or [settings.corpus_dir]
    if not any(p.exists() for p in paths):
        # Nothing to read at all is a usage error; one missing path among others is reported and the rest ingested.
        raise FileNotFoundError(f"no such file or directory: {', '.join(map(str, paths))}")
    if args.rebuild and args.reindex:
        raise ValueError("--rebuild and --reindex exclude each other: choose one")
    store = None if args.reindex else open_store(settings)
    if args.rebuild and store is not None:
        with ingest_lock(settings.data_dir):  # never drop the collection under a running ingest
            store.drop()
            shutil.rmtree(settings.bm25_path, ignore_errors=True)
    bar: tqdm | None = None  # type: ignore[type-arg]

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total == 0:  # nothing to embed: no empty progress bar
            return
        if bar is None:
            bar = tqdm(total=total, unit="paper", desc="embedding + writing", disable=args.quiet, mininterval=0.2)
        bar.update(done - bar.n)

    if store is None:
        from ingest.reindex import reindex

        report = reindex(settings, paths, args.format, progress)
    else:
        report = Ingestor(settings, store).ingest_paths(paths, args.format, progress)
    if bar is not None:
        bar.close()
    if args.json:
        print(json.dumps({**asdict(report), "ok": report.ok}, indent=2, ensure_ascii=False))
        return EXIT_OK if report.ok else EXIT_REJECTED
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in report.rejected[:50]:
        print(f"rejected: {line}", file=sys.stderr)
    if len(report.rejected) > 50:
        print(f"rejected: ... and {len(report.rejected) - 50} more", file=sys.stderr)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_REJECTED


def _cmd_status(args: argparse.Namespace) -> int:
    from rag.store import open_store

    settings = _settings(args)
    store = open_store(settings)
    info = {
        "store": settings.store.mode,
        "location": settings.store_location,
        "collection": store.name,
        "embedding_provider": settings.embedding.provider,
        "embedding_model": store.model_id,
        "rerank": settings.rerank.provider,
        "rewrite": settings.rewrite.mode,
        "papers": store.paper_count(),
        "chunks": store.count(),
    }
    print(json.dumps(info, indent=2))
    return EXIT_OK


def _filters(args: argparse.Namespace) -> Any:
    from rag.retrieve import Filters

    if args.year_min is None and args.year_max is None and not args.category:
        return None
    return Filters(args.year_min, args.year_max, tuple(args.category or ()))


def _print_answer(answer: Any, as_json: bool) -> None:
    if as_json:
        print(answer.to_json())
        return
    print(answer.text)
    if answer.query != answer.question:
        print(f"\n(searched: {answer.query})")
    if answer.citations:
        print("\nReferences")
        print(answer.references_markdown())
    elif answer.refused and answer.sources:
        print("\nNearest papers")
        for s in answer.sources[:5]:
            print(f"- {s.title}")
    for flag in answer.flags:
        print(f"warning: {flag}")
    outcome = f"partial (the abstracts do not give {answer.missing})" if answer.outcome == "partial" else answer.outcome
    print(f"\noutcome: {outcome} · refused: {'yes' if answer.refused else 'no'} · {answer.mode_note}")


def _open_assistant(args: argparse.Namespace) -> Any:
    from rag.assistant import Assistant

    return Assistant.open(_settings(args))


def _warn_invalid(question: str, as_json: bool) -> None:
    problem = normalize_text(question).problem
    if problem and not as_json:
        print(f"warning: question: {problem}", file=sys.stderr)


ASK_FORMATS = ("text", "json", "markdown", "bibtex", "csl")


def _ask_format(args: argparse.Namespace) -> str:
    """--format, with --json as its alias for --format json (a contradiction is a usage error)."""
    if args.json and args.format not in (None, "json"):
        raise ValueError(f"--json means --format json; it cannot be combined with --format {args.format}")
    return "json" if args.json else args.format or "text"


def _cmd_ask(args: argparse.Namespace) -> int:
    fmt = _ask_format(args)
    assistant = _open_assistant(args)
    _warn_invalid(args.question, fmt == "json")
    answer = assistant.ask(args.question, k=args.k, mode=args.mode, filters=_filters(args))
    if fmt in ("text", "json"):
        _print_answer(answer, fmt == "json")
    elif fmt == "markdown":
        print(answer.to_markdown(), end="")
    else:
        exported = answer.to_bibtex() if fmt == "bibtex" else answer.to_csl_json() + "\n"
        if not answer.citations:
            # The export stays valid (empty .bib, "[]"); say why on stderr, where a `> refs.bib` does not catch it.
            print(f"note: the answer cites no papers (outcome: {answer.outcome}); nothing to export", file=sys.stderr)
        print(exported, end="")
    return EXIT_OK


def _cmd_chat(args: argparse.Namespace) -> int:
    assistant = _open_assistant(args)
    conv = assistant.conversation()
    if isinstance(sys.stdin, io.TextIOWrapper):
        # An undecodable byte on one line arrives as a surrogate (replaced and reported), not a crash of the chat.
        sys.stdin.reconfigure(errors="surrogateescape")
    print(f"Ask about the indexed papers ({assistant.mode_note}). Empty line or Ctrl-D to quit.")
    while True:
        try:
            question = input("\n> ")
        except EOFError:
            return EXIT_OK
        if not question.strip():
            return EXIT_OK
        _warn_invalid(question, args.json)
        try:
            _print_answer(conv.ask(question, k=args.k, mode=args.mode, filters=_filters(args)), args.json)
        except ValueError as exc:
            print(json.dumps({"error": str(exc)}) if args.json else f"error: {exc}")


def _cmd_ui(args: argparse.Namespace) -> int:
    from rag.exposure import check_bind

    check_bind(args.host, args.auth is not None, args.expose_without_auth)  # fail before the slow start
    from ui.app import launch

    print(f"starting the UI at http://{args.host}:{args.port} (first launch indexes the bundled corpus) …")
    launch(
        _settings(args), host=args.host, port=args.port, auth=args.auth, expose_without_auth=args.expose_without_auth
    )
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from app.serve import check_serve_bind, serve

    settings = _settings(args)
    host = args.host or settings.serve.host
    check_serve_bind(host, bool(args.api_key) or settings.serve.api_key is not None)  # fail before the slow start
    serve(settings, host=args.host, port=args.port, api_key=args.api_key)
    return EXIT_OK


def _cmd_mcp(args: argparse.Namespace) -> int:
    from app.serve import serve_mcp

    serve_mcp(_settings(args), port=args.port)
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    from evals.run import main as eval_main

    return int(eval_main(args.args) or 0)


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


class UsageError(Exception):
    """A command line argparse rejects: reported by ``main`` as text or, under --json, as JSON."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _add_answer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=_positive_int, default=None, help="papers to retrieve (default: settings)")
    p.add_argument("--mode", choices=[m.value for m in Mode], default=None, help="retrieval mode")
    p.add_argument("--year-min", type=int, default=None)
    p.add_argument("--year-max", type=int, default=None)
    p.add_argument("--category", action="append", help="only papers in this category (repeatable: any of them)")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rag", description="Answer questions about ML paper abstracts.")
    parser.add_argument("--config", type=Path, default=None, help="TOML settings file (default ./rag.toml)")
    parser.add_argument("--data-dir", type=Path, default=None, help="override RAG_DATA_DIR")
    sub = parser.add_subparsers(dest="command", required=True)

    ing = sub.add_parser("ingest", help="index abstracts into Chroma + BM25 (default: the bundled corpus)")
    ing.add_argument("paths", nargs="*", type=Path, help="files or directories to ingest")
    ing.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="input format (default: detected per file)",
    )
    ing.add_argument("--rebuild", action="store_true", help="drop the collection and index everything anew")
    ing.add_argument(
        "--reindex",
        action="store_true",
        help="index everything anew with the configured embedding model into a side collection and swap it in when "
        "complete (after changing RAG_EMBEDDING__*; the old index serves until then and is kept as <name>__previous)",
    )
    ing.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ing.add_argument("--json", action="store_true", help="print the ingest report (or the error) as JSON")
    ing.set_defaults(func=_cmd_ingest)

    ask = sub.add_parser("ask", help="answer one question with citations")
    ask.add_argument("question")
    _add_answer_options(ask)
    ask.add_argument(
        "--format",
        choices=ASK_FORMATS,
        default=None,
        help="output: text (default), json (the Answer, = --json), markdown (answer + references), "
        "bibtex or csl (CSL-JSON) for the cited papers",
    )
    ask.set_defaults(func=_cmd_ask)

    chat = sub.add_parser("chat", help="interactive terminal chat with follow-up questions")
    _add_answer_options(chat)
    chat.set_defaults(func=_cmd_chat)

    ev = sub.add_parser(
        "eval", help="run the curated eval set (see docs/evals.md; `rag eval --help` for options)", add_help=False
    )
    ev.add_argument("args", nargs=argparse.REMAINDER)
    ev.set_defaults(func=_cmd_eval)

    ui = sub.add_parser("ui", help="the Gradio chat UI (indexes the bundled corpus on first launch)")
    ui.add_argument("--host", default="127.0.0.1", help="interface to serve on (default: 127.0.0.1 only)")
    ui.add_argument("--port", type=int, default=7860)
    ui.add_argument(
        "--auth", default=None, help="require a login (Gradio's sign-in form) as user:password; needed beyond loopback"
    )
    ui.add_argument(
        "--expose-without-auth",
        action="store_true",
        help="serve a non-loopback --host with no login: anyone reaching the port can ask, upload and use the LLM",
    )
    ui.set_defaults(func=_cmd_ui)

    srv = sub.add_parser("serve", help="the HTTP API: OpenAI-compatible chat completions, search, papers (docs/api.md)")
    srv.add_argument("--host", default=None, help="interface to bind (default: 127.0.0.1 only; beyond it needs a key)")
    srv.add_argument("--port", type=int, default=None, help="port (default 7861)")
    srv.add_argument("--api-key", default=None, help="bearer key clients must send (default: RAG_SERVE__API_KEY)")
    srv.set_defaults(func=_cmd_serve)

    mcp = sub.add_parser("mcp", help="an MCP server (stdio; streamable HTTP on 127.0.0.1 with --port): docs/api.md")
    mcp.add_argument("--port", type=int, default=None, help="serve streamable HTTP on this loopback port")
    mcp.set_defaults(func=_cmd_mcp)

    st = sub.add_parser("status", help="what the index holds")
    st.set_defaults(func=_cmd_status)
    return parser


def _error(as_json: bool, message: str, code: int = EXIT_ERROR) -> int:
    """Report an error the same way under --json (a JSON object on stdout) as without (a line on stderr)."""
    if as_json:
        print(json.dumps({"error": message}, ensure_ascii=False))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    from ingest.formats.common import FormatError
    from rag.ingest_lock import IngestLockedError
    from rag.store import EmbeddingMismatchError, StoreUnavailableError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["eval"]:
        # The eval runner has its own options (argparse.REMAINDER cannot pass "--split …" through a subparser).
        from evals.run import main as eval_main

        return int(eval_main(argv[1:]) or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        if "--json" in argv:
            return _error(True, str(exc))
        parser.print_usage(sys.stderr)
        print(exc, file=sys.stderr)
        return EXIT_ERROR
    as_json = bool(getattr(args, "json", False)) or (args.command == "ask" and args.format == "json")
    try:
        return int(args.func(args))
    except (
        StoreUnavailableError,
        EmbeddingMismatchError,
        FormatError,
        FileNotFoundError,
        ValueError,
        IngestLockedError,
    ) as exc:
        return _error(as_json, str(exc))
    except Exception as exc:
        from rag.embeddings import EmbeddingError
        from rag.llms import LLMError  # imported here: the offline path never loads the OpenAI client

        if isinstance(exc, LLMError | EmbeddingError):
            return _error(as_json, str(exc))
        raise
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to finish; nothing is duplicated.", file=sys.stderr)
        return 130
