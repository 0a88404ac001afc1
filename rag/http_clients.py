"""The HTTP clients handed to the ``openai`` SDK: its defaults, with one TLS context per process."""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["async_http_client", "sync_http_client", "tls_context"]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verified TLS context every SDK client shares.

    Building one reads the whole CA bundle (~30-60 ms here), and every SDK client, sync and async, of every LLM,
    judge and embedder built would otherwise build its own. A context is safe to share between clients and threads."""
    return httpx.create_ssl_context()


def sync_http_client() -> httpx.Client:
    import openai  # lazily: the extractive path never builds a client

    return openai.DefaultHttpxClient(verify=tls_context())


def async_http_client() -> httpx.AsyncClient:
    import openai

    return openai.DefaultAsyncHttpxClient(verify=tls_context())
