"""The one normalisation step of ingest and questions: table of real cases, then fuzzed with hypothesis."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.text_normalize import REPLACEMENT, normalize_text


@pytest.mark.parametrize(
    ("raw", "text", "invalid"),
    [
        ("Lone surrogate \ud800 title", f"Lone surrogate {REPLACEMENT} title", 1),
        ("What is \udcff SimCSE evaluated on?", f"What is {REPLACEMENT} SimCSE evaluated on?", 1),  # sys.argv's \xff
        (b"What is \xff SimCSE evaluated on?", f"What is {REPLACEMENT} SimCSE evaluated on?", 1),
        ("Sim\u200bCSE", "SimCSE", 0),  # zero-width space
        ("Sim\u00adCSE", "SimCSE", 0),  # soft hyphen
        ("\ufeffSimCSE\u2060", "SimCSE", 0),  # BOM, word joiner
        ("ＳｉｍＣＳＥ on ＳＴＳ", "SimCSE on STS", 0),  # full-width
        ("e\ufb03cient", "efficient", 0),  # ligature
        ("10⁶ steps, O(n²), x₁", "10⁶ steps, O(n²), x₁", 0),  # NFKC would say 106, O(n2), x1
        ("evil\u202egnp.exe", "evilgnp.exe", 0),  # a right-to-left override
        ("tab\tand\nnewline stay, \x07bell goes", "tab\tand\nnewline stay, bell goes", 0),
        ("a real pair 😀 stays", "a real pair 😀 stays", 0),
        ("already a \ufffd replacement", "already a \ufffd replacement", 0),  # not counted twice
        (b"already a \xef\xbf\xbd replacement", "already a \ufffd replacement", 0),
    ],
)
def test_cases(raw: str | bytes, text: str, invalid: int) -> None:
    norm = normalize_text(raw)
    assert (norm.text, norm.invalid) == (text, invalid)
    assert bool(norm.problem) == bool(invalid)


@given(st.one_of(st.text(), st.binary()))
def test_fuzz_output_is_encodable_normal_visible_and_stable(raw: str | bytes) -> None:
    norm = normalize_text(raw)
    norm.text.encode("utf-8")  # no lone surrogates: the hash, the tokenizer and Chroma can all take it
    assert unicodedata.is_normalized("NFC", norm.text)  # NFKC but for super/subscripts, which are kept
    assert not any(unicodedata.category(c) == "Cf" for c in norm.text)
    assert not any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in norm.text)
    again = normalize_text(norm.text)
    assert (again.text, again.invalid, again.removed) == (norm.text, 0, 0)  # idempotent


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["L", "N", "Zs", "P"])))
def test_fuzz_plain_nfkc_text_is_unchanged(raw: str) -> None:
    plain = unicodedata.normalize("NFKC", raw).replace("\u2028", " ")
    assert normalize_text(plain).text == plain
