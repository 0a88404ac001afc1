"""A research assistant over ML paper abstracts, with verified citations.

>>> from rag import Assistant
>>> Assistant.open().ask("What did SimCSE evaluate on?").text
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer import Answer
    from rag.assistant import Assistant
    from rag.settings import Settings

__all__ = ["Answer", "Assistant", "Settings"]


def __getattr__(name: str) -> Any:
    # Lazy: `import rag` stays cheap (the CLI imports it before knowing whether a model is needed).
    if name == "Assistant":
        from rag.assistant import Assistant

        return Assistant
    if name == "Answer":
        from rag.answer import Answer

        return Answer
    if name == "Settings":
        from rag.settings import Settings

        return Settings
    raise AttributeError(name)
