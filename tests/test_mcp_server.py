"""`rag mcp`: the MCP server, driven by the official SDK's client over stdio (a real `python -m app mcp`
subprocess on the bundled index) and in-process."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import pytest

from rag.assistant import Assistant
from rag.protocols import Embedder

pytestmark = pytest.mark.slow

QUESTION = "What did SimCSE evaluate on?"


@pytest.fixture(scope="module")
def assistant(bundled_index: tuple[Any, Any, Any], embedder: Embedder) -> Assistant:
    settings, store, _ = bundled_index
    return Assistant.open(settings, store=store, embedder=embedder)


async def _session(server: Any) -> dict[str, Any]:
    from mcp import Client

    async with Client(server) as client:
        tools = await client.list_tools()
        asked = await client.call_tool("ask", {"question": QUESTION})
        found = await client.call_tool("search_papers", {"query": "contrastive sentence embeddings", "k": 3})
        first = found.structured_content["result"][0]["paper_id"]
        paper = await client.call_tool("get_paper", {"paper_id": first})
        missing = await client.call_tool("get_paper", {"paper_id": "no-such-paper"})
        resource = await client.read_resource(f"paper://{first}")
        return {
            "tools": {t.name for t in tools.tools},
            "asked": asked,
            "found": found.structured_content["result"],
            "paper": paper.structured_content,
            "missing": missing,
            "resource": getattr(resource.contents[0], "text", ""),
        }


def _check(got: dict[str, Any], assistant: Assistant) -> None:
    assert got["tools"] == {"search_papers", "ask", "get_paper"}
    expected = assistant.ask(QUESTION)
    asked = got["asked"]
    assert not asked.is_error
    assert asked.content[0].text.startswith(expected.text)
    data = asked.structured_content
    assert data["outcome"] == expected.outcome
    assert [(c["paper_id"], c["quote"]) for c in data["citations"]] == [
        (c.paper_id, c.quote) for c in expected.citations
    ]
    hits = assistant.retrieve("contrastive sentence embeddings", k=3)
    assert [r["paper_id"] for r in got["found"]] == [h.paper_id for h in hits]
    assert got["paper"]["title"] == hits[0].title and hits[0].best_chunk in got["paper"]["abstract"]
    assert got["missing"].is_error and "no-such-paper" in got["missing"].content[0].text
    assert got["resource"].startswith(f"# {hits[0].title}")


def test_stdio_subprocess_with_the_sdk_client(bundled_index: tuple[Any, Any, Any], assistant: Assistant) -> None:
    from mcp import StdioServerParameters

    settings, _, _ = bundled_index
    env = {k: v for k, v in os.environ.items() if k.startswith(("RAG_", "HF_", "TOKENIZERS", "PATH", "HOME"))}
    env["RAG_DATA_DIR"] = str(settings.data_dir)
    server = StdioServerParameters(command=sys.executable, args=["-m", "app", "mcp"], env=env)
    _check(asyncio.run(_session(server)), assistant)


def test_in_process(assistant: Assistant) -> None:
    from app.mcp_server import build_mcp

    _check(asyncio.run(_session(build_mcp(assistant))), assistant)
