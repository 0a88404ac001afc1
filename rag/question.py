"""What a question asks for, read off its wording (pure logic, no model): the kind of answer (a number, a
dataset, a named thing, yes/no, or an open description), the names it is about, and the words naming the detail
asked for.

The answerability decision (rag.answerability) then checks whether a retrieved abstract has a sentence that
supplies that kind of answer for that detail. Names and numbers are compared in one canonical form on both sides
(``canonical``): scraped abstracts flatten LaTeX (``128\\times128`` becomes "128times128"), write "F_1" for F1,
and use "×" or "x" for image sizes, while users type "128x128".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AskKind",
    "QuestionSpec",
    "analyse",
    "asks_for_several",
    "canonical",
    "mentions",
    "specific_terms",
    "technical",
]

AskKind = Literal["number", "dataset", "entity", "yesno", "open"]

# "128times128", "128 \times 128", "128×128", "128 x 128" -> "128x128"; "F_1" -> "F1".
_DIMS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:\\?times|×|x|\*)\s*(?=\d)", re.IGNORECASE)
_SUBSCRIPT = re.compile(r"(?<=[A-Za-z])_(?=\d)")


def canonical(text: str) -> str:
    """Text with sizes and subscripts written one way, for matching only (quotes keep the original text)."""
    return _SUBSCRIPT.sub("", _DIMS.sub(r"\1x", text))


# Tokens: a number-led token ("128x128", "3.4x", "2.0") or a word that may carry digits, dots and hyphens inside
# ("GPT-4", "wav2vec", "K-means"). A letter-led token never starts inside a number, so "128x128" gives no "x128".
_TOKEN = re.compile(r"\d[\w.\-]*\w|\d|[A-Za-z][A-Za-z0-9\-.]*[A-Za-z0-9]|[A-Za-z]")
# Capitalised words that are not names even mid-sentence.
_COMMON = frozenset(
    re.findall(
        r"\S+",
        """i a an the what which who whom whose how why when where is are was were do does did can could should would
        will may might has have had paper papers method methods model models approach work works english german
        chinese french transformer transformers there any some phd msc""",
    )
)

_NUMBER_Q = re.compile(
    r"\b(how (many|much|long|fast|large|big|well|often|accurate)|by how much|what (percentage|fraction|proportion|"
    r"number)|(what|which)\s+(?:[\w\-]+\s+){0,5}?(accuracy|score|fid|bleu|rouge|f1|auc|ap|map|miou|iou|wer|psnr|"
    r"error|error rate|perplexity|speed-?up|size|rate|gain|improvement|correlation|reduction|latency|throughput|cost|"
    r"budget|resolution|parameters|learning rate|batch size|dimension|dimensionality|steps|timesteps|epochs|layers|"
    r"hours|gpus|bits per dimension))\b",
    re.IGNORECASE,
)
_DATASET_Q = re.compile(
    r"\b(which|what)\s+(?:[\w\-]+\s+){0,3}(datasets?|benchmarks?|corpora|corpus|tasks)\b"
    r"|\b(evaluat\w*|tested|test|benchmarked)\s+(on|with|against)\b|\bwhat did\b.*\b(evaluate|test)\b",
    re.IGNORECASE,
)
_YESNO_Q = re.compile(r"^\s*(does|do|is|are|can|could|did|was|were|has|have|will|would|should)\b", re.IGNORECASE)
# The words between the question word and the verb name the detail asked for: "what *batch size* was used".
_DETAIL = re.compile(
    r"\b(?:what|which|how many|how much)\s+(?P<detail>(?:[\w\-]+\s+){0,4}?[\w\-]+)\s+"
    r"(?:was|were|is|are|did|does|do|has|have|had|can|could|would|will|reach|reaches|reached|achieve|achieves|"
    r"get|gets|report|reports|give|gives|take|takes|used|use)\b",
    re.IGNORECASE,
)
_QUESTION_WORDS = frozenset(
    re.findall(r"\S+", "what which how many much does do is are did the a an by of on in for that this")
)
# A question asks for several papers when its head noun is a plural noun for pieces of research: "Which papers…",
# "Are there methods…", "any studies on…", "training-free ways to…", "work on…". The words before the head may be
# modifiers only: a function word there ("overview *of* methods", "a controller *that* works for…") means the
# plural noun is not the head, and the question asks about one thing.
_WORKS = r"(?:papers|works|studies|publications|articles|methods|approaches|techniques|ways|frameworks|algorithms|work)"
_MODIFIER = (
    r"(?!(?:of|that|which|who|whose|do|does|did|is|are|was|were|can|could|how|why|when|where|it|its|and)\b)[\w\-]+\s+"
)
_SEVERAL = re.compile(
    rf"^\s*(?:(?:which|what)\s+(?:{_MODIFIER}){{0,2}}?{_WORKS}\b"
    rf"|(?:is|are)\s+there\s+(?:any\s+)?(?:{_MODIFIER}){{0,2}}?{_WORKS}\b"
    rf"|(?:any|other|some)\s+{_WORKS}\b"
    rf"|(?:{_MODIFIER}){{0,4}}?{_WORKS}\s+(?:that|which|on|for|about|to|using|in|where|with)\b)",
    re.IGNORECASE,
)
# "CLIP-style", "SAM-like", "BERT-based": the name is the part before the suffix.
_NAME_SUFFIX = re.compile(r"-(?:style|like|based|type|esque)$", re.IGNORECASE)


@dataclass(frozen=True)
class QuestionSpec:
    """``names``: specific terms evidence must mention; ``detail``: the words naming what is asked ("batch
    size"), "" when the question asks for a description; ``several``: the question asks for several papers
    ("Which papers…"), not about one; ``counts``: the question asks how many of the ``detail`` there are ("How
    many images…"), so only a value that counts them answers it (not "1B parameters")."""

    text: str
    kind: AskKind
    names: tuple[str, ...]
    detail: str
    several: bool = False
    counts: bool = False


def specific_terms(question: str) -> list[str]:
    """Names in the question that evidence must mention: 'CASP14', 'GPT-4', 'SimCSE', 'BERT', '128x128'."""
    terms: list[str] = []
    for i, m in enumerate(_TOKEN.finditer(canonical(question))):
        tok = _NAME_SUFFIX.sub("", re.sub(r"'s$", "", m.group(0).rstrip(".-")))
        if len(tok) < 2 or tok.lower() in _COMMON:
            continue
        if tok[0].isdigit():
            if re.fullmatch(r"\d+x\d+", tok):
                terms.append(tok)  # a size is as specific as a name; a bare number is what is asked, not given
            continue
        has_digit = any(c.isdigit() for c in tok)
        inner_cap = any(c.isupper() for c in tok[1:])
        capitalised_mid = i > 0 and tok[0].isupper()
        if has_digit or inner_cap or capitalised_mid:
            terms.append(tok)
    return list(dict.fromkeys(terms))


def technical(term: str) -> bool:
    """A name shaped like a model, dataset or metric ("SimCSE", "GPT-4", "CASP14", "BERT"), not a capitalised
    everyday word ("Forest", "Paris") or a two-letter abbreviation ("US", "UK")."""
    letters = [c for c in term if c.isalpha()]
    if len(term) < 3:
        return False
    return (
        any(c.isdigit() for c in term)
        or any(c.isupper() for c in term[1:])
        or (len(letters) >= 2 and all(c.isupper() for c in letters))
    )


def ask_kind(question: str) -> AskKind:
    if _NUMBER_Q.search(question):
        return "number"
    if _YESNO_Q.search(question):
        return "yesno"
    if _DATASET_Q.search(question):
        return "dataset"
    return "open"


def asks_for_several(question: str) -> bool:
    """Whether the question's grammar asks for several papers ("Which papers study…", "methods that…") rather
    than about one ("Which method…", "What did SimCSE…", "a model that…")."""
    return _SEVERAL.search(" ".join(question.split())) is not None


def analyse(question: str) -> QuestionSpec:
    q = " ".join(question.split())
    kind = ask_kind(q)
    detail = ""
    m = _DETAIL.search(q)
    several = asks_for_several(q)
    if m and kind == "open" and not several and re.match(r"wh", m.group(0), re.IGNORECASE):
        # "Which backbone does MiniGPT-v2 build on?": answered by a sentence naming a thing, which is quoted first.
        # Only the quotes' order: abstracts name a backbone without the word "backbone" ("our model using BERT
        # base"), so requiring the detail's words turned 9 of 36 answerable dev questions partial (docs/evals.md).
        kind = "entity"
    if m and kind in ("number", "dataset", "entity"):
        words = [w for w in m.group("detail").split() if w.lower() not in _QUESTION_WORDS]
        detail = " ".join(words)
    counts = bool(m and detail and re.match(r"how many\b", m.group(0), re.IGNORECASE))
    return QuestionSpec(q, kind, tuple(specific_terms(q)), detail, several, counts)


def _term_pattern(term: str) -> str:
    """A regex for ``term`` tolerant of a hyphen, space or underscore where the term has a hyphen or switches
    between letters and digits: "GPT-4" ~ "GPT 4" ~ "GPT4", "K-means" ~ "K means"."""
    t = term.lower()
    sep = r"[\-\s_]?"
    out: list[str] = []
    for i, ch in enumerate(t):
        if ch == "-":
            out.append(sep)
            continue
        prev = t[i - 1] if i else ""
        if prev and prev != "-" and ((prev.isalpha() and ch.isdigit()) or (prev.isdigit() and ch.isalpha())):
            out.append(sep)
        out.append(re.escape(ch))
    return "".join(out)


def mentions(text: str, term: str) -> bool:
    """Whether ``text`` mentions ``term``: whole tokens, case-insensitive, separator-tolerant, sizes and subscripts
    in canonical form (rag.question.canonical), or an acronym the text spells out ("GNN" ~ "graph neural
    networks")."""
    low = canonical(text).lower()
    if re.search(rf"(?<![a-z0-9]){_term_pattern(canonical(term))}(?![a-z0-9])", low):
        return True
    letters = term[:-1] if term.endswith("s") and term[:-1].isupper() else term
    if letters.isalpha() and letters.isupper() and 2 <= len(letters) <= 6:
        return _spelled_out(letters.lower(), re.findall(r"[a-z]+", low))
    return False


def _spelled_out(acronym: str, words: list[str]) -> bool:
    """Whether consecutive words spell ``acronym`` by their first letters, a word giving one or more ("GNN":
    graph neural networks; "ELBO": evidence lower bound)."""

    def fits(a: int, w: int) -> bool:
        if a == len(acronym):
            return True
        if w == len(words):
            return False
        word = words[w]
        return any(word.startswith(acronym[a : a + n]) and fits(a + n, w + 1) for n in range(len(acronym) - a, 0, -1))

    return any(words[i].startswith(acronym[0]) and fits(0, i) for i in range(len(words)))
