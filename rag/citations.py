"""Citation checking for generated answers: parse [n] markers, score each cited claim against the cited abstract,
drop citations of sources that do not exist, optionally drop unsupported ones, and renumber by first use.

Pure string logic (no model, no I/O) so it runs on every answer, offline, in milliseconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from rag.sentences import split_sentences
from rag.stemming import english_stemmer
from rag.types import Citation, Source

__all__ = [
    "LEADING_MARKERS",
    "MARKER_GROUP",
    "MARKER_PATTERN",
    "CheckedAnswer",
    "SentenceSupport",
    "check_answer",
    "content_terms",
    "parse_markers",
    "strip_markers",
    "support",
]

# One marker group: [1], [ 2 ], [1, 2], [1-3], [1; 4-5]. At most 3 digits, so years ([2023]) are not citations;
# a following "(" makes it a markdown link ([1](url)), which is not a citation either.
_NUM = r"\d{1,3}(?:\s*[-–]\s*\d{1,3})?"
MARKER_PATTERN = rf"\[\s*({_NUM}(?:\s*[,;]\s*{_NUM})*)\s*\]"
"""A bracketed number group as our citation markup writes it (the one definition: rag.markup, ui.render reuse it)."""
MARKER_GROUP = re.compile(rf"{MARKER_PATTERN}(?!\()")
"""A citation marker group in running text (not a markdown link's label)."""
LEADING_MARKERS = re.compile(rf"^(?:\s*{MARKER_GROUP.pattern})+")
"""The marker groups a sentence opens with (the splitter attaches "... noise.” [1]" to the next sentence)."""
_LINK = re.compile(r"\[[^\[\]]*\]\([^)\s]*\)")  # [text](url): its url may itself contain "[1]"
_CLOSES = frozenset(".,;:!?)")

# Numbers first (thousands separators, decimals; a "%" is dropped), then words; hyphens and apostrophes split tokens
# ("K-means" -> K, means; "SimCSE's" -> SimCSE, s) and 1-letter pieces are dropped below.
_SUBSCRIPT = re.compile(r"(?<=[A-Za-z])_(?=\d)")
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_][^\W_]*")
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(re.findall(r"\w+", "two three four five six seven eight nine ten"), 2)}
# English function words plus the boilerplate every ML abstract and answer shares ("we propose a novel method
# ... results show"): counting those would give any claim partial credit from any abstract.
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        """a about above after again all also am among an and any are as at be been being both but by can could did do
    does doing during each either etc few for from further had has have having he her here hers him his how however
    i if in into is it its itself just may me might more most much must my no nor not of off on once one only or
    other our ours out over own per same she should so some such than that the their theirs them then there these
    they this those through thus to too under until up upon us very via was we were what when where whereas which
    while who whom whose why will with within without would you your yours paper papers propose proposed proposes
    present presents presented introduce introduces introduced novel new approach approaches method methods work
    works study studies author authors show shows shown demonstrate demonstrates result results use uses used using
    based well various several like e g et al""",
    )
)
_KEY_WEIGHT = 2.0  # names and numbers identify what a claim is about; generic words only describe it


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of the checked answer (as it appears in the returned text) and how well its citations back it."""

    sentence: str
    cited: list[int]
    score: float
    supported: bool


@dataclass(frozen=True)
class CheckedAnswer:
    """An answer after checking: ``text`` renumbered [1]..[m] by first use, ``citations`` exactly those m."""

    text: str
    citations: list[Citation]
    sentences: list[SentenceSupport]
    removed: list[int]  # original numbers that named no source
    unsupported: list[int]  # new numbers of citations kept in the text but flagged unsupported
    renumber_map: dict[int, int] = field(default_factory=dict)  # original n -> new n, kept citations only
    dropped: list[int] = field(default_factory=list)  # original numbers dropped as unsupported (drop_unsupported)


def _expand(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        lo, _, hi = re.sub(r"\s", "", part).replace("–", "-").partition("-")
        a, b = int(lo), int(hi or lo)
        out.extend(range(a, b + 1) if a <= b else [a, b])
    return out


def _markers(text: str) -> list[re.Match[str]]:
    links = [m.span() for m in _LINK.finditer(text)]
    return [m for m in MARKER_GROUP.finditer(text) if not any(a <= m.start() < b for a, b in links)]


def parse_markers(text: str) -> list[int]:
    """Citation numbers in order of appearance (repeats kept): "[3] x [1, 2-3]" -> [3, 1, 2, 3]."""
    return [n for m in _markers(text) for n in _expand(m.group(1))]


def strip_markers(text: str) -> str:
    """``text`` without its citation markers, e.g. for scoring: "foo [1]." -> "foo."."""
    return _render(text, {})


@lru_cache(maxsize=4096)
def _terms(text: str) -> dict[str, bool]:
    """Content terms of ``text`` -> whether each is a key term. Names (SimCSE, STS, LLMs, capitalised words after
    the first: "Contrastive Predictive Coding") and numbers are kept exactly, lowercased: stemming "SimCSE" or "76.3"
    would only create false matches. Other words are stemmed so "clustering"/"clusters" match."""
    terms: dict[str, bool] = {}
    text = _SUBSCRIPT.sub("", text)  # "F_1" (LaTeX-ish abstracts) is the "F1" a question writes
    for i, tok in enumerate(_TOKEN.findall(text)):
        low = tok.lower()
        if re.fullmatch(r"(19|20)\d\d", tok):
            terms[tok] = False  # a year in an answer ("SimCSE (2021)") is context, rarely in the abstract
        elif tok[0].isdigit() or low in _NUMBER_WORDS:
            terms[_NUMBER_WORDS.get(low, tok.replace(",", ""))] = True
        elif len(tok) < 2 or low in _STOPWORDS:
            continue
        elif (i and tok[0].isupper()) or any(c.isdigit() for c in tok) or tok[1:] != tok[1:].lower():
            terms.setdefault(low[:-1] if re.fullmatch(r"[A-Z]{2,}s", tok) else low, True)  # LLMs -> llm
        else:
            terms.setdefault(english_stemmer().stemWord(low), False)
    return terms


def content_terms(text: str) -> list[str]:
    """The words ``support`` counts in ``text`` (names, numbers and stemmed content words; function words and the
    boilerplate of abstracts dropped)."""
    return list(_terms(text))


def _forms(text: str) -> frozenset[str]:
    # Evidence terms in both exact and stemmed form, so a claim writing "simcse" (stemmed to "simcs") still matches
    # an abstract writing "SimCSE", and vice versa.
    terms = _terms(text)
    return frozenset(terms) | frozenset(english_stemmer().stemWord(t) for t in terms)


def _hit(term: str, forms: frozenset[str]) -> bool:
    return term in forms or english_stemmer().stemWord(term) in forms  # "Transformers" in the claim, "Transformer" here


def _recall(claim: dict[str, bool], forms: frozenset[str]) -> float:
    total = sum(_KEY_WEIGHT if key else 1.0 for key in claim.values())
    found = sum(_KEY_WEIGHT if key else 1.0 for t, key in claim.items() if _hit(t, forms))
    return found / total if total else 0.0


def support(claim: str, evidence: str) -> tuple[float, str]:
    """How well ``evidence`` (an abstract) backs ``claim`` (one answer sentence), in [0, 1], and the evidence
    sentence that backs it best (the quote; "" when nothing overlaps).

    score = sqrt(names found / names) * (numbers found / numbers) * (0.5 * best-sentence recall + 0.5 * whole-abstract
    recall), recall counting the claim's content terms, names and numbers weighing double. Why:
    - recall, not precision: a one-line claim summarises a long abstract; what matters is that its words are there.
    - best sentence: a claim copied or paraphrased from one sentence is the strongest evidence, and gives the quote;
      whole abstract: answers also fuse two sentences of an abstract into one claim, which is still supported.
    - the name and number factors: answers go wrong by swapping a name or number ("DefSent uses K-means", "79.1%"
      for "76.3%") while keeping every generic word, which recall alone rates highly (0.6-0.75 on such swaps). A
      claim none of whose names occur in the abstract scores 0; one that also names another paper in comparison
      loses only ~30% (sqrt). Numbers are stricter (linear): a number the abstract does not state is unsupported.
    """
    claim_terms = _terms(strip_markers(claim))
    sentences = split_sentences(evidence) if evidence.strip() else []
    if not claim_terms or not sentences:
        return 0.0, ""
    whole = _forms(evidence)
    best, quote = max(((_recall(claim_terms, _forms(s)), s) for s in sentences), key=lambda x: x[0])
    names = [t for t, key in claim_terms.items() if key and not t[0].isdigit()]
    numbers = [t for t, key in claim_terms.items() if key and t[0].isdigit()]
    factor = math.sqrt(sum(_hit(t, whole) for t in names) / len(names)) if names else 1.0
    factor *= sum(_hit(t, whole) for t in numbers) / len(numbers) if numbers else 1.0
    score = factor * (0.5 * best + 0.5 * _recall(claim_terms, whole))
    return round(score, 4), quote if best > 0 else ""


def _spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text``, line by line so lists and paragraphs stay apart. Markers that open
    a sentence ("... K-means. [1] SimCSE ...") are given to the sentence before, which they cite."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.split("\n"):
        pos, line_spans = 0, []
        for sent in split_sentences(line) if line.strip() else []:
            # Align on non-space characters: the splitter may normalise whitespace inside a sentence.
            while pos < len(line) and line[pos].isspace():
                pos += 1
            start = pos
            for ch in re.sub(r"\s", "", sent):
                while pos < len(line) and line[pos].isspace():
                    pos += 1
                if pos >= len(line) or line[pos] != ch:
                    break
                pos += 1
            line_spans.append([start, pos])
        if line_spans:
            line_spans[-1][1] = len(line.rstrip())
        for i in range(1, len(line_spans)):
            lead = LEADING_MARKERS.match(line[line_spans[i][0] : line_spans[i][1]])
            if lead:
                end = line_spans[i - 1][1] = line_spans[i][0] + lead.end()
                line_spans[i][0] = len(line) - len(line[end:].lstrip())
        spans.extend((offset + a, offset + b) for a, b in line_spans if line[a:b].strip())
        offset += len(line) + 1
    return spans


def _render(text: str, keep: dict[int, int]) -> str:
    """``text`` with each marker group rewritten through ``keep`` (old -> new) as [a][b], duplicates within the
    text collapsed, and groups left empty removed along with the spacing they leave behind."""
    out, cursor, seen = "", 0, set[int]()
    for m in _markers(text):
        new = [keep[n] for n in dict.fromkeys(_expand(m.group(1))) if n in keep and keep[n] not in seen]
        seen.update(new)
        out += text[cursor : m.start()]
        cursor = m.end()
        if new:
            out += "".join(f"[{n}]" for n in new)
            continue
        nxt = text[cursor : cursor + 1]
        if nxt == "" or nxt in _CLOSES or nxt == "\n":
            out = out.rstrip(" \t")  # "foo [9]." -> "foo."
        elif nxt in " \t" and (out == "" or out[-1].isspace()):
            cursor += len(text[cursor:]) - len(text[cursor:].lstrip(" \t"))  # "foo [9] bar" -> "foo bar"
    return (out + text[cursor:]).strip()


def check_answer(
    text: str, sources: list[Source], threshold: float = 0.4, drop_unsupported: bool = False
) -> CheckedAnswer:
    """Check every [n] of ``text`` against ``sources`` (matched by ``Source.n``); see CheckedAnswer."""
    by_n = {s.n: s for s in sources}
    spans = _spans(text)
    cites = [list(dict.fromkeys(parse_markers(text[a:b]))) for a, b in spans]
    order = list(dict.fromkeys(parse_markers(text)))
    removed = [n for n in order if n not in by_n]
    # Best (score, quote) per (sentence, cited source); each citation keeps its best across its sentences.
    scores = [
        {n: support(text[a:b], by_n[n].abstract or by_n[n].best_chunk) for n in ns if n in by_n}
        for (a, b), ns in zip(spans, cites, strict=True)
    ]
    best: dict[int, tuple[float, str]] = {}
    for per in scores:
        for n, sq in per.items():
            if n not in best or sq[0] > best[n][0]:
                best[n] = sq
    dropped = [n for n in order if n in best and best[n][0] < threshold] if drop_unsupported else []
    kept = [n for n in order if n in best and n not in dropped]
    renumber = {old: new for new, old in enumerate(kept, start=1)}
    citations = [
        Citation(renumber[n], by_n[n].paper_id, by_n[n].title, best[n][1], best[n][0], best[n][0] >= threshold)
        for n in kept
    ]
    # Rendered sentence by sentence, so duplicates collapse within a sentence while a source cited again later keeps
    # its marker; what lies between sentences (spaces, newlines) is copied unchanged.
    sentences, out, cursor = [], "", 0
    for (a, b), ns, per in zip(spans, cites, scores, strict=True):
        rendered = _render(text[a:b], renumber)
        out, cursor = out + text[cursor:a] + rendered, b
        cited = list(dict.fromkeys(parse_markers(rendered)))
        score = max((per[n][0] for n in ns if n in renumber), default=0.0)
        sentences.append(SentenceSupport(rendered, cited, score, bool(cited) and score >= threshold))
    return CheckedAnswer(
        text=out + text[cursor:],
        citations=citations,
        sentences=sentences,
        removed=removed,
        unsupported=[c.n for c in citations if not c.supported],
        renumber_map=renumber,
        dropped=dropped,
    )
