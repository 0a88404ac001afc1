"""Exposure is explicit: no unauthenticated bind beyond loopback, no browser-chosen LLM URLs unless allowed, never
to this server's own addresses when it is exposed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from rag.exposure import EXPOSE_FLAG, ExposureError, blocked_reason, check_bind, check_session_llm_url, is_loopback_host
from rag.settings import Settings
from ui.session import prefs_from_inputs


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("myhost", False),
        ("::ffff:127.0.0.1", True),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_binding_beyond_loopback_needs_auth_or_the_explicit_flag() -> None:
    check_bind("127.0.0.1", auth=False)
    check_bind("0.0.0.0", auth=True)
    check_bind("0.0.0.0", auth=False, expose_without_auth=True)
    with pytest.raises(ExposureError, match=EXPOSE_FLAG):
        check_bind("0.0.0.0", auth=False)


def test_rag_ui_on_all_interfaces_without_auth_refuses_to_start() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "app", "ui", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 2, res.stderr
    assert "--auth" in res.stderr and EXPOSE_FLAG in res.stderr and "starting" not in res.stdout


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::ffff:127.0.0.1", True),
        ("93.184.216.34", False),
        ("10.0.0.5", False),  # a LAN model server stays possible (documented)
    ],
)
def test_blocked_addresses(address: str, blocked: bool) -> None:
    assert bool(blocked_reason(address)) is blocked


def _resolver(table: dict[str, list[str]]) -> Any:
    return lambda host: table[host]


def test_session_llm_urls() -> None:
    resolve = _resolver({"llm.example": ["93.184.216.34"], "sneaky.example": ["93.184.216.34", "127.0.0.1"]})
    server = "http://127.0.0.1:8080/v1"
    check_session_llm_url(server, server, allow_custom=False, exposed=True, resolve=resolve)  # the server's own
    with pytest.raises(ExposureError, match="custom LLM base URLs are off"):
        check_session_llm_url("http://127.0.0.1:22/", server, allow_custom=False, exposed=False, resolve=resolve)
    check_session_llm_url("http://127.0.0.1:9/v1", server, allow_custom=True, exposed=False, resolve=resolve)
    check_session_llm_url("https://llm.example/v1", server, allow_custom=True, exposed=True, resolve=resolve)
    for url in (
        "http://127.0.0.1:22/",
        "http://[::1]:8080/",
        "http://169.254.169.254/latest/",
        "http://sneaky.example/",
    ):
        with pytest.raises(ExposureError, match="refused"):
            check_session_llm_url(url, server, allow_custom=True, exposed=True, resolve=resolve)


def _prefs(settings: Settings, exposed: bool, base_url: str) -> Any:
    return prefs_from_inputs(
        settings, 4, "hybrid", None, None, "", "openai-compatible", "m", base_url, "", 0.0, exposed=exposed
    )


def test_ui_session_settings_apply_the_url_rules() -> None:
    port_scan = "http://127.0.0.1:22/"
    with pytest.raises(ValueError, match="custom LLM base URLs are off"):
        _prefs(Settings(), False, port_scan)
    allowed = Settings(ui={"allow_custom_llm_urls": True})  # type: ignore[arg-type]
    assert _prefs(allowed, False, port_scan).llm.base_url == port_scan
    with pytest.raises(ValueError, match="loopback"):
        _prefs(allowed, True, port_scan)
    own = Settings(llm={"provider": "openai-compatible", "base_url": "http://127.0.0.1:8080/v1"})  # type: ignore[arg-type]
    assert _prefs(own, True, "http://127.0.0.1:8080/v1").llm.base_url == "http://127.0.0.1:8080/v1"
