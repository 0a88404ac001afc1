"""Starting the servers: the HTTP API (refusing an exposed bind without a key) and the MCP server. Each opens the
Assistant (indexing the bundled corpus on a first launch) and serves it."""

from __future__ import annotations

import sys

from pydantic import SecretStr

from rag.assistant import Assistant
from rag.exposure import ExposureError, is_loopback_host
from rag.settings import Settings

__all__ = ["check_serve_bind", "open_for_serving", "serve", "serve_mcp"]


def check_serve_bind(host: str, has_key: bool) -> None:
    """An API bound beyond loopback answers anyone who reaches the port, with the server's LLM: it needs a key."""
    if not is_loopback_host(host) and not has_key:
        raise ExposureError(
            f"serving the API on {host} exposes it to the network: set an API key (--api-key KEY or "
            "RAG_SERVE__API_KEY) that clients send as Authorization: Bearer KEY"
        )


def open_for_serving(settings: Settings) -> Assistant:
    """The Assistant, after indexing the bundled corpus into an empty index (progress on stderr: on the MCP stdio
    transport, stdout is the protocol's channel)."""
    from ingest.live import ensure_index
    from rag.embeddings import build_embedder
    from rag.store import open_store

    store = open_store(settings)
    embedder = build_embedder(settings.embedding, settings.models_dir)
    ensure_index(settings, store, embedder, echo=lambda line: print(line, file=sys.stderr, flush=True))
    return Assistant.open(settings, store=store, embedder=embedder)


def serve(settings: Settings, host: str | None = None, port: int | None = None, api_key: str | None = None) -> None:
    import uvicorn

    from app.http_api import build_api

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if api_key is not None:
        overrides["api_key"] = SecretStr(api_key)
    cfg = settings.serve.model_copy(update=overrides)
    check_serve_bind(cfg.host, cfg.api_key is not None)
    assistant = open_for_serving(settings)
    print(f"serving the API at http://{cfg.host}:{cfg.port}/v1 ({assistant.mode_note})", flush=True)
    uvicorn.run(build_api(assistant, cfg), host=cfg.host, port=cfg.port, log_level="warning")


def serve_mcp(settings: Settings, port: int | None = None) -> None:
    """stdio (for an MCP client that starts this process), or streamable HTTP on 127.0.0.1:``port``."""
    from app.mcp_server import build_mcp

    server = build_mcp(open_for_serving(settings))
    if port is None:
        server.run("stdio")
    else:
        print(f"serving MCP at http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)
        server.run("streamable-http", host="127.0.0.1", port=port)
