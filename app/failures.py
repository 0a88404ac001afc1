"""Which failures the servers report to their client as they are: each carries a one-line message written for
the user. Anything else is a bug: logged on the server, reported without its text."""

from __future__ import annotations

from rag.embeddings import EmbeddingError
from rag.llms import LLMError
from rag.store import StoreUnavailableError

__all__ = ["SERVICE_DOWN", "USER_FACING"]

SERVICE_DOWN: tuple[type[Exception], ...] = (StoreUnavailableError, LLMError, EmbeddingError)
"""A service the answer needs is down or failing (Chroma, the LLM, an embeddings API)."""
USER_FACING: tuple[type[Exception], ...] = (ValueError, *SERVICE_DOWN)
"""Those, and a request the Assistant rejects (empty or too long question, bad k or mode)."""
