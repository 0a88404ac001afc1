"""Per-browser-session state: the answer settings (``Prefs``) and the conversation (``Chat``).

Both live in ``gr.State``: Gradio keeps one copy per session on the server, so one user's settings, API key and
history never reach another session. The API key is a pydantic ``SecretStr`` (its repr is ``**********``) and is
only ever handed to ``rag.llms.build_llm``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

from rag.assistant import Turn
from rag.exposure import check_session_llm_url
from rag.retrieve import Filters
from rag.settings import LLM_PROVIDERS, LLMSettings, Settings
from rag.types import Mode

__all__ = ["Chat", "Prefs", "prefs_from_inputs"]

MAX_K = 20
MAX_TURNS = 50  # kept per session; the assistant itself reads only the last few
_CATEGORY_SEP = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Prefs:
    """Answer settings of one session. ``llm`` None: the server's LLM configuration (or extractive mode)."""

    k: int = 6
    mode: Mode = Mode.HYBRID
    year_min: int | None = None
    year_max: int | None = None
    categories: tuple[str, ...] = ()
    llm: LLMSettings | None = None

    @classmethod
    def defaults(cls, settings: Settings) -> Prefs:
        return cls(k=min(settings.retrieval.k, MAX_K), mode=settings.retrieval.mode)

    def filters(self) -> Filters | None:
        if self.year_min is None and self.year_max is None and not self.categories:
            return None
        return Filters(self.year_min, self.year_max, self.categories)

    def summary(self) -> str:
        """What this session now uses, e.g. "top-k 3, hybrid retrieval, years 2020–any, categories cs.CL"."""
        parts = [f"top-k {self.k}", f"{self.mode} retrieval"]
        if self.year_min is not None or self.year_max is not None:
            parts.append(f"years {self.year_min or 'any'}–{self.year_max or 'any'}")
        if self.categories:
            parts.append("categories " + ", ".join(self.categories))
        return ", ".join(parts)

    def llm_call(self) -> tuple[Any, bool]:
        """(llm override for ``Assistant.stream``, extractive flag). Raises ValueError for an unusable config."""
        if self.llm is None:
            return None, False
        if self.llm.provider == "none":
            return None, True
        from rag.llms import build_llm

        return build_llm(self.llm), False

    def mode_note(self, server_note: str) -> str:
        if self.llm is None:
            return server_note
        from rag.llms import describe

        return describe(self.llm)


@dataclass
class Chat:
    """The conversation of one session: turns for follow-up rewriting, rendered messages for the Chatbot."""

    turns: list[Turn] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)

    def add(self, turn: Turn, user_html: str, answer_html: str) -> None:
        self.turns.append(turn)
        self.messages += [{"role": "user", "content": user_html}, {"role": "assistant", "content": answer_html}]
        del self.turns[:-MAX_TURNS]
        del self.messages[: -2 * MAX_TURNS]


def _year(value: float | int | str | None, label: str) -> int | None:
    """A year bound; empty or 0 (what an empty number box sends) means no bound."""
    if value is None or (isinstance(value, str) and not value.strip()) or value == 0:
        return None
    try:
        year = int(float(value))
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a year such as 2021") from None
    if not 1900 <= year <= 2100:
        raise ValueError(f"{label} must be a year between 1900 and 2100")
    return year


def _llm(
    settings: Settings, provider: str, model: str, base_url: str, api_key: str, temperature: float, exposed: bool
) -> LLMSettings | None:
    server = settings.llm
    provider = provider if provider in LLM_PROVIDERS else ""
    if not provider:
        raise ValueError(f"LLM provider must be one of {', '.join(LLM_PROVIDERS)}")
    model = model.strip() or server.model
    url = base_url.strip() or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("LLM base URL must be an http(s) URL such as http://127.0.0.1:8080/v1")
        check_session_llm_url(url, server.base_url, settings.ui.allow_custom_llm_urls, exposed)
    key = api_key.strip()
    same_place = provider == server.provider and url == server.base_url
    if same_place and not key and model == server.model and temperature == server.temperature:
        return None  # exactly the server's configuration
    if provider == "openai-compatible" and url is None:
        raise ValueError("the openai-compatible provider needs a base URL (e.g. http://127.0.0.1:8080/v1)")
    secret: SecretStr | None = SecretStr(key) if key else None
    if secret is None and same_place:
        secret = server.api_key  # the server's key goes only where the server already sends it
    elif secret is None and provider == "openai" and url is not None:
        # Without this, the OpenAI client would send the server's OPENAI_API_KEY to a URL typed in the browser.
        raise ValueError("enter an API key for this base URL")
    try:
        return server.model_copy(
            update={
                "provider": provider,
                "model": model,
                "base_url": url,
                "api_key": secret,
                "temperature": LLMSettings.model_validate({"temperature": temperature}).temperature,
            }
        )
    except ValidationError:
        raise ValueError("temperature must be between 0 and 2") from None


def prefs_from_inputs(
    settings: Settings,
    k: float,
    mode: str,
    year_min: float | int | str | None,
    year_max: float | int | str | None,
    categories: str,
    provider: str,
    model: str,
    base_url: str,
    api_key: str,
    temperature: float,
    exposed: bool = False,
) -> Prefs:
    """Validated settings from the Settings accordion. Raises ValueError with a message fit for the user.
    ``exposed``: the app is served beyond loopback (stricter rules for LLM base URLs, see rag.exposure)."""
    k_int = int(k or 0)
    if not 1 <= k_int <= MAX_K:
        raise ValueError(f"top-k must be between 1 and {MAX_K}")
    retrieval_mode = Mode.parse(mode)
    lo, hi = _year(year_min, "from year"), _year(year_max, "to year")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError("'from year' is after 'to year'")
    cats = tuple(dict.fromkeys(c for c in _CATEGORY_SEP.split(categories or "") if c))
    llm = _llm(settings, provider, model or "", base_url or "", api_key or "", float(temperature or 0.0), exposed)
    return Prefs(k=k_int, mode=retrieval_mode, year_min=lo, year_max=hi, categories=cats, llm=llm)
