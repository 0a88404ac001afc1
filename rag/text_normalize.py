"""The one normalisation step every text passes through on its way in: records at ingest, questions at ask time.

So the content hash, the index and the query all see the same text:
- invalid bytes (a ``bytes`` input, or ``surrogateescape``'d ones such as ``sys.argv`` holds) and lone surrogates
  (JSON ``"\\ud800"``) become U+FFFD and are *reported*: they cannot be encoded as UTF-8, and the embedder's
  tokenizer, the content hash and Chroma all fail on them;
- Unicode NFKC, so full-width letters ("ＳｉｍＣＳＥ"), ligatures ("ﬁ") and compatibility characters match their
  plain forms in BM25 and in the citation checks; except superscripts and subscripts, which NFKC folds into plain
  digits and letters ("10⁶" would read "106", "O(n²)" "O(n2)"): in abstracts they carry meaning, so they stay;
- format characters removed: zero-width spaces and joiners, soft hyphens, BOMs and bidirectional overrides
  (Unicode category Cf), which are invisible and split one name into two tokens ("Sim\\u200bCSE");
- control characters other than tab and newline removed.

>>> normalize_text("Sim\\u200bCSE on ＳＴＳ").text
'SimCSE on STS'
>>> normalize_text("bad \\ud800 title").invalid
1
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["REPLACEMENT", "NormalizedText", "normalize_text", "one_line"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
# Every character NFKC folds because it is a superscript or subscript (~200, all below U+AC00; scanning that range at
# import takes ~30 ms).
_SUPSUB = re.compile(
    "(["
    + "".join(
        re.escape(chr(c))
        for c in range(0xA0, 0xAC00)
        if unicodedata.decomposition(chr(c)).startswith(("<super>", "<sub>"))
    )
    + "])"
)


@dataclass(frozen=True)
class NormalizedText:
    """``text`` as the system stores and searches it; ``invalid``: how many characters could not be decoded
    (invalid bytes or lone surrogates, each now U+FFFD); ``removed``: invisible/control characters dropped."""

    text: str
    invalid: int = 0
    removed: int = 0

    @property
    def problem(self) -> str:
        """A sentence for the user when characters had to be replaced, else ""."""
        if not self.invalid:
            return ""
        s = "s" if self.invalid > 1 else ""
        return f"{self.invalid} invalid character{s} (undecodable bytes or lone surrogates) replaced with U+FFFD"


def _drop(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category == "Cf" or (category == "Cc" and ch not in "\t\n\r")


_ASCII_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # the Cc characters _drop drops below U+0080
_NON_ASCII = re.compile("[^\x00-\x7f]+")


def _visible(text: str) -> str:
    """``text`` without the characters ``_drop`` names. Only non-ASCII runs are looked up one by one: abstracts are
    nearly all ASCII, and a lookup per character was most of the time a corpus spent here."""
    text = _ASCII_CONTROL.sub("", text)
    if text.isascii():
        return text
    return _NON_ASCII.sub(lambda run: "".join(ch for ch in run.group() if not _drop(ch)), text)


def _nfkc(text: str) -> str:
    """NFKC everywhere but on superscripts and subscripts (kept as they are; they are starters, so the pieces
    between them normalise exactly as they would in the whole text)."""
    if not _SUPSUB.search(text):
        return unicodedata.normalize("NFKC", text)
    pieces = _SUPSUB.split(text)  # odd indices: the kept characters
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(pieces))


def normalize_text(value: str | bytes) -> NormalizedText:
    """``value`` normalised (see the module docstring). Pure; idempotent: normalising the result changes nothing."""
    if isinstance(value, bytes):
        decoded = value.decode("utf-8", errors="replace")
        invalid = decoded.count(REPLACEMENT) - value.count(REPLACEMENT.encode())
        text = decoded
    else:
        text, invalid = _SURROGATE.subn(REPLACEMENT, value)
    removed = 0
    while True:  # removing a character can make a new composable pair ("e" + ZWJ + U+0301): until stable (rare)
        text = _nfkc(text)
        kept = _visible(text)
        if len(kept) == len(text):
            return NormalizedText(kept, invalid, removed)
        removed += len(text) - len(kept)
        text = kept


def one_line(text: object, secret: str | None = None, limit: int = 200) -> str:
    """A server reply or error detail fit for a one-line message: whitespace collapsed, ``secret`` (an API key)
    masked, cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    if secret and len(secret) > 3:
        line = line.replace(secret, "***")
    return line if len(line) <= limit else line[: limit - 1] + "…"
