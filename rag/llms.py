"""The LLM provider factory and the two calls the assistant makes, with failures turned into one clear error.

>>> llm = build_llm(settings.llm)                 # None in extractive mode
>>> text = complete_chat(llm, messages)           # raises LLMError("the LLM at http://… timed out …")
>>> for delta in stream_chat(llm, messages): ...

Retries: the OpenAI SDK client retries connection errors, timeouts, 408/409/429 and 5xx ``max_retries`` times
(exponential backoff 0.5-8 s, or the server's Retry-After when it is at most ``MAX_RETRY_AFTER`` seconds; a
longer Retry-After fails at once). llama-index's own retry layer is switched off: stacked on the SDK's it
multiplies the attempts ((max_retries + 1) x max_retries, plus 1-20 s random waits) and only covers
non-streaming calls. So a call ends within about ``timeout x (max_retries + 1)`` plus the backoff sleeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import openai

from rag.extractive import EXTRACTIVE_NOTE
from rag.http_clients import async_http_client, sync_http_client
from rag.settings import LLM_PROVIDERS, LLMSettings
from rag.text_normalize import one_line

if TYPE_CHECKING:
    from llama_index.core.llms import LLM, ChatMessage

    from rag.protocols import ChatModel

__all__ = ["MAX_RETRY_AFTER", "LLMError", "build_llm", "complete_chat", "describe", "failure_reason", "stream_chat"]

log = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_API_KEY = "not-needed"  # local OpenAI-compatible servers ignore the key, the SDK insists on one
MAX_RETRY_AFTER = 20.0
"""Longest server-requested Retry-After (seconds) that is waited for; a longer one fails the call at once."""
_EMPTY = "returned an empty answer (some servers, llama.cpp's among them, do this when the prompt exceeds the context)"


class LLMError(RuntimeError):
    """An LLM call failed; ``str(error)`` is a one-line message fit to show the user (no traceback, no key)."""


# --------------------------------------------------------------------------------------------------- clients


class _BoundedRetryAfter:
    """Mixin for the SDK clients: honour Retry-After only up to MAX_RETRY_AFTER (the SDK waits up to 120 s)."""

    def _should_retry(self, response: httpx.Response) -> bool:
        retry_after = self._parse_retry_after_header(response.headers)  # type: ignore[attr-defined]
        if retry_after is not None and retry_after > MAX_RETRY_AFTER:
            return False
        return bool(super()._should_retry(response))  # type: ignore[misc]


class _SyncClient(_BoundedRetryAfter, openai.OpenAI):
    pass


class _AsyncClient(_BoundedRetryAfter, openai.AsyncOpenAI):
    pass


def _clients(cfg: LLMSettings, api_key: str, base_url: str) -> dict[str, Any]:
    common: dict[str, Any] = {
        "api_key": api_key,
        "base_url": base_url,
        "timeout": cfg.timeout,
        "max_retries": cfg.max_retries,
    }
    return {
        "openai_client": _SyncClient(**common, http_client=sync_http_client()),
        "async_openai_client": _AsyncClient(**common, http_client=async_http_client()),
    }


def build_llm(cfg: LLMSettings) -> LLM | None:
    """The configured chat LLM, or None for provider "none" (extractive mode).

    "openai": llama-index's ``OpenAI`` (the key falls back to OPENAI_API_KEY; a model name llama-index does
    not know yet is served through ``OpenAILike`` against the same API). "openai-compatible": ``OpenAILike``
    in chat mode at ``cfg.base_url`` (required). Raises ValueError for a configuration that cannot work."""
    if cfg.provider == "none":
        return None

    from llama_index.llms.openai import OpenAI
    from llama_index.llms.openai.utils import resolve_openai_credentials
    from llama_index.llms.openai_like import OpenAILike

    key = cfg.api_key.get_secret_value() if cfg.api_key is not None else None
    common: dict[str, Any] = {
        "model": cfg.model,
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
        "timeout": cfg.timeout,
        "max_retries": 0,  # the SDK client below retries (cfg.max_retries); see the module docstring
    }

    if cfg.provider == "openai-compatible":
        if not cfg.base_url:
            raise ValueError(
                "RAG_LLM__PROVIDER=openai-compatible needs a base URL: set RAG_LLM__BASE_URL "
                "(e.g. http://127.0.0.1:8080/v1 for llama.cpp, http://127.0.0.1:11434/v1 for Ollama)"
            )
        base_url = _check_url(cfg.base_url)
        api_key = key or PLACEHOLDER_API_KEY
        return OpenAILike(  # type: ignore[no-any-return]
            **common,
            api_key=api_key,
            api_base=base_url,
            is_chat_model=True,
            is_function_calling_model=False,
            **_clients(cfg, api_key, base_url),
        )

    if cfg.provider != "openai":
        raise ValueError(f"unknown LLM provider {cfg.provider!r}: use one of {', '.join(LLM_PROVIDERS)}")
    resolved_key, resolved_url, _ = resolve_openai_credentials(api_key=key, api_base=cfg.base_url)
    if not resolved_key:
        raise ValueError("RAG_LLM__PROVIDER=openai needs an API key: set OPENAI_API_KEY (or RAG_LLM__API_KEY)")
    api_key, base_url = str(resolved_key), _check_url(resolved_url)
    llm = OpenAI(**common, api_key=api_key, api_base=base_url, **_clients(cfg, api_key, base_url))
    try:
        llm.metadata  # noqa: B018  -- raises for a model name missing from llama-index's table
    except ValueError:
        log.info("llama-index does not know OpenAI model %r; using it through OpenAILike", cfg.model)
        llm = OpenAILike(
            **common,
            api_key=api_key,
            api_base=base_url,
            is_chat_model=True,
            is_function_calling_model=True,
            context_window=128_000,
            **_clients(cfg, api_key, base_url),
        )
    return llm  # type: ignore[no-any-return]


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"LLM base URL must be an http(s) URL such as http://127.0.0.1:8080/v1, not {url!r}")
    return url.rstrip("/")


def _display_url(url: str | None) -> str:
    """``url`` without user:password@, query or fragment (they may carry credentials)."""
    if not url:
        return "(no base URL)"
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def describe(cfg: LLMSettings) -> str:
    """One line for the UI/CLI saying which LLM answers (never the API key)."""
    if cfg.provider == "none":
        return EXTRACTIVE_NOTE
    if cfg.provider == "openai":
        return f"LLM: openai {cfg.model} at {_display_url(cfg.base_url or OPENAI_BASE_URL)}"
    if not cfg.base_url:
        return f"LLM: openai-compatible {cfg.model} — base URL missing: set RAG_LLM__BASE_URL"
    return f"LLM: openai-compatible {cfg.model} at {_display_url(cfg.base_url)}"


# --------------------------------------------------------------------------------------------------- calls


def _where(llm: Any) -> str:
    return f"the LLM at {_display_url(getattr(llm, 'api_base', None))}"


def failure_reason(exc: BaseException, own: type[BaseException]) -> str:
    """Why an optional LLM-backed stage failed, as one line for the user's flags: the message of the stage's own
    error or of an ``LLMError`` (both written for the user), else the exception's type and text."""
    clean = isinstance(exc, (own, LLMError))
    return one_line(str(exc) if clean else f"{type(exc).__name__}: {exc}")


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
        detail = body.get("detail")
        if detail:
            return str(detail)
    text = exc.response.text if exc.response is not None else ""
    return text or exc.message


def _attempts(llm: Any, retried: bool = True) -> str:
    retries = getattr(getattr(llm, "_client", None), "max_retries", 0) if retried else 0
    n = retries + 1 if isinstance(retries, int) else 1
    return f"{n} attempts" if n > 1 else "1 attempt"


def describe_api_error(
    exc: BaseException,
    *,
    where: str,
    secret: str | None,
    attempts: Callable[[bool], str],
    timeout: object,
    model: str,
    key_hint: str,
) -> str | None:
    """One line for the OpenAI-client errors the chat and embeddings paths share (never the API key); None for
    an exception of another kind. ``attempts(retried)`` names how many attempts the client made."""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        within = f" within {timeout:g} s" if isinstance(timeout, int | float) else ""
        return f"{where} did not answer{within} ({attempts(True)}): timed out"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        reason = one_line(str(cause), secret) if cause is not None and str(cause) else "connection failed"
        return f"{where} is unreachable ({attempts(True)}): {reason}"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        # The server's text may echo part of the key: it is not shown.
        return f"{where} rejected the API key (HTTP {exc.status_code}): check {key_hint}"
    if isinstance(exc, openai.RateLimitError):
        raw = exc.response.headers.get("retry-after") if exc.response is not None else None
        try:
            retry_after = float(raw) if raw is not None else None
        except ValueError:
            retry_after = None
        retried = retry_after is None or retry_after <= MAX_RETRY_AFTER
        wait = f"; the server asks to wait {raw} s" if raw else ""
        reason = one_line(_server_message(exc), secret)
        return f"{where} is rate-limiting requests (HTTP 429, {attempts(retried)}{wait}): {reason}"
    if isinstance(exc, openai.NotFoundError):
        reason = one_line(_server_message(exc), secret)
        return f"{where} returned HTTP 404 (unknown model {model!r} or wrong base URL?): {reason}"
    if isinstance(exc, openai.APIStatusError):
        retried = exc.status_code >= 500 or exc.status_code in (408, 409)
        reason = one_line(_server_message(exc), secret)
        return f"{where} failed with HTTP {exc.status_code} ({attempts(retried)}): {reason}"
    return None


def _translate(exc: BaseException, llm: Any) -> LLMError:
    """A user-facing LLMError for an exception raised while talking to the LLM."""
    where = _where(llm)
    secret = getattr(llm, "api_key", None)
    message = describe_api_error(
        exc,
        where=where,
        secret=secret,
        attempts=lambda retried: _attempts(llm, retried),
        timeout=getattr(llm, "timeout", None),
        model=str(getattr(llm, "model", "?")),
        key_hint="OPENAI_API_KEY / RAG_LLM__API_KEY",
    )
    if message is not None:
        return LLMError(message)
    if isinstance(exc, httpx.HTTPError):
        return LLMError(f"{where} broke off the response: {one_line(f'{type(exc).__name__}: {exc}', secret)}")
    if isinstance(exc, openai.APIError):  # APIResponseValidationError, an error event inside a stream, …
        return LLMError(f"{where} returned an error: {one_line(exc.message, secret)}")
    if isinstance(exc, json.JSONDecodeError):
        return LLMError(f"{where} returned malformed JSON: {one_line(str(exc), secret)}")
    return LLMError(f"{where} returned an unexpected response: {one_line(f'{type(exc).__name__}: {exc}', secret)}")


# Errors that mean "the server's answer was not what an OpenAI chat API returns", not a bug in our code path.
_RESPONSE_ERRORS = (openai.OpenAIError, httpx.HTTPError, ValueError, TypeError, AttributeError, KeyError, IndexError)


def complete_chat(llm: ChatModel, messages: Sequence[ChatMessage]) -> str:
    """The LLM's whole answer to ``messages``. Raises LLMError (one clear line) on any failure or an empty answer."""
    try:
        response = llm.chat(list(messages))
    except LLMError:
        raise
    except _RESPONSE_ERRORS as exc:
        log.debug("LLM call failed", exc_info=exc)
        raise _translate(exc, llm) from exc
    text = response.message.content or ""
    if not text.strip():
        raise LLMError(f"{_where(llm)} {_EMPTY}")
    return str(text)


def stream_chat(llm: ChatModel, messages: Sequence[ChatMessage]) -> Iterator[str]:
    """The LLM's answer to ``messages`` as text deltas (empty deltas skipped).

    Raises LLMError on any failure, also mid-stream (after some deltas were yielded), or if nothing came."""
    stream = None
    got_text = False
    try:
        stream = llm.stream_chat(list(messages))
        for chunk in stream:
            delta = chunk.delta
            if delta:
                got_text = got_text or bool(delta.strip())
                yield delta
    except LLMError:
        raise
    except _RESPONSE_ERRORS as exc:
        log.debug("LLM call failed", exc_info=exc)
        raise _translate(exc, llm) from exc
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a consumer that stops early also ends the HTTP stream
    if not got_text:
        raise LLMError(f"{_where(llm)} {_EMPTY}")
