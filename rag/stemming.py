"""The English stemmer shared by BM25, citation checking and the eval protocol, so that a word matches the same
way in each. PyStemmer's stemmer objects keep state between calls and are not safe to share across threads (the UI
serves several sessions at once), so each thread gets its own."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["english_stemmer"]

_LOCAL = threading.local()


def english_stemmer() -> Any:
    """This thread's ``Stemmer.Stemmer("english")`` (PyStemmer: ``stemWord``, ``stemWords``)."""
    stemmer = getattr(_LOCAL, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _LOCAL.stemmer = Stemmer.Stemmer("english")
    return stemmer
