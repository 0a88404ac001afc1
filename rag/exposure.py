"""What a server may expose, and where a browser session may make it send requests (pure checks; DNS is passed in).

- Binding the UI to anything but a loopback address serves it to the network: that needs a login (``--auth``), or
  the explicit ``--expose-without-auth``. Otherwise anyone who reaches the port can upload into the index and use
  the server's LLM.
- A base URL typed in a browser session makes the *server* send HTTP requests. Custom URLs are off unless the
  settings allow them (``ui.allow_custom_llm_urls``); when the server is exposed, even allowed ones never go to a
  loopback, link-local (cloud metadata at 169.254.169.254), unspecified, multicast or reserved address, so a
  visitor cannot probe the server's own ports or its cloud metadata service.

>>> is_loopback_host("127.0.0.1"), is_loopback_host("0.0.0.0")
(True, False)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = [
    "EXPOSE_FLAG",
    "ExposureError",
    "Resolver",
    "blocked_reason",
    "check_bind",
    "check_session_llm_url",
    "is_loopback_host",
    "resolve_host",
]

EXPOSE_FLAG = "--expose-without-auth"
Resolver = Callable[[str], list[str]]  # host name -> IP addresses


class ExposureError(ValueError):
    """A bind address or an LLM URL that the exposure rules refuse; the message says what to do instead."""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return ip


def is_loopback_host(host: str) -> bool:
    """True only for names that serve this machine alone: a loopback IP or "localhost"."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    return ip is not None and ip.is_loopback


def check_bind(host: str, auth: bool, expose_without_auth: bool = False) -> None:
    """Raise ExposureError when serving on ``host`` would expose the app to the network without a login."""
    if is_loopback_host(host) or auth or expose_without_auth:
        return
    raise ExposureError(
        f"serving on {host} exposes the app to the network: anyone who reaches the port could upload papers into "
        f"the index and use the server's LLM. Add --auth user:password, or pass {EXPOSE_FLAG} if that is what "
        "you want (e.g. behind your own authenticating proxy)."
    )


def blocked_reason(address: str) -> str:
    """Why an exposed server must not send requests to ``address`` (an IP), or "" when it may."""
    ip = _ip(address)
    if ip is None:
        return "not an IP address"
    for flag, what in (
        (ip.is_loopback, "a loopback address (this server itself)"),
        (ip.is_link_local, "a link-local address (e.g. cloud metadata)"),
        (ip.is_unspecified, "the unspecified address (this server itself)"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
    ):
        if flag:
            return what
    return ""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to (the I/O half of check_session_llm_url)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ExposureError(f"cannot resolve the LLM host {host!r}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def check_session_llm_url(
    url: str, server_url: str | None, allow_custom: bool, exposed: bool, resolve: Resolver = resolve_host
) -> None:
    """Raise ExposureError unless a browser session may point the server's LLM client at ``url``.

    The server's own configured ``server_url`` is always fine; another URL needs ``allow_custom``, and on an
    exposed server every address its host resolves to must pass ``blocked_reason``. (A name that resolves
    differently at request time, DNS rebinding, is not covered: keep custom URLs off on exposed servers.)"""
    if url == server_url:
        return
    if not allow_custom:
        raise ExposureError(
            "custom LLM base URLs are off on this server (the server's operator can allow them with "
            "RAG_UI__ALLOW_CUSTOM_LLM_URLS=true); leave the base URL empty to use the server's LLM"
        )
    if not exposed:
        return
    host = urlsplit(url).hostname or ""
    addresses = [host] if _ip(host) is not None else resolve(host)
    for address in addresses:
        reason = blocked_reason(address)
        if reason:
            raise ExposureError(f"LLM base URL refused: {host} is {reason}, and this server is exposed")
