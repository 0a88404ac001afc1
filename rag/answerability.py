"""The three honest outcomes of a question (pure logic, no model, no I/O): answered, partial, refused.

Evidence is read at the sentence level. For each retrieved abstract the code asks what the question asks for
(rag.question: a number, a dataset, yes/no, a description; the names it is about; the words naming the detail)
and whether a sentence supplies it:

- **refused**, the indexed abstracts do not cover the question:
  - nothing close: the best dense similarity is under ``min_similarity``;
  - not about ML research: the question is closer to an everyday domain than to any abstract (rag.topicality;
    ``min_margin``);
  - an everyday question built around a technical name the abstracts use ("What colour is BERT's sweater on Sesame
    Street?"): the name makes the whole question look technical (``min_margin_named`` lets it through), so the
    rest of the question is judged on its own: without its names it reads as everyday (its margin is under
    ``min_rest_margin``) and no sentence of an abstract mentioning the name supports it (``min_rest_support``);
  - a named model, dataset or result no retrieved abstract mentions ("AlphaFold on CASP14").
- **partial**, the paper is found but its abstract lacks the detail: some of the question's names are found and
  others are in no abstract ("SimCSE on STS-B" when the abstract reports only the STS average), or a number (a
  dataset) is asked for and no sentence of the paper that answers gives one for the detail asked ("What batch size
  was used to pretrain wav2vec 2.0?"; a count, "How many images…", only by a value within a few words of what it
  counts, so "1B parameters" does not answer it). The answer says what the abstract does say and names what is
  missing.
- **answered** otherwise: the lead paper's best sentences are quoted (scored without the names the paper is
  known to mention, so "our model is 3x faster" counts for "How much faster is LLMLingua-2?"). Another paper is
  added only when its own best sentence supports the question about as well: ``companion_ratio`` when the
  question asks for several papers ("Which papers…", rag.question.asks_for_several); for a question about one
  paper ``companion_ratio_one`` and, in addition, a retrieval score near the lead's (``companion_score_ratio``)
  and a sentence that supports the question on its own (``companion_support_one``), so such answers are not
  padded with papers that merely share the topic.

The thresholds are chosen on the dev split (docs/evals.md, ``python -m evals.calibrate_outcomes``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.citations import content_terms, support
from rag.question import QuestionSpec, canonical, mentions, specific_terms, technical
from rag.sentences import split_sentences
from rag.settings import Settings
from rag.stemming import english_stemmer
from rag.types import Source

__all__ = [
    "MIN_REST_TERMS",
    "OFF_TOPIC_REASONS",
    "Decision",
    "Evidence",
    "PaperEvidence",
    "Quote",
    "Thresholds",
    "decide",
    "decide_on",
    "found_names",
    "gather",
    "rest_of_question",
    "rest_to_judge",
]

Outcome = Literal["answered", "partial", "refused"]

# A number stated as a value: not the digits inside a name ("ResNet-50", "F1", "GPT-4").
_VALUE = re.compile(
    r"(?<![A-Za-z\-_])\d+(?:[.,]\d+)?|\b(two|three|four|five|six|seven|eight|nine|ten|hundreds?|thousands?|"
    r"millions?|billions?|dozens?)\b",
    re.IGNORECASE,
)
# A year in a reference ("(Dosovitskiy et al., 2020)") is no value the abstract reports.
_REFERENCE = re.compile(r"\bet al\.?,?\s*\(?\d{4}[a-z]?\)?")
# How many words from a value the thing it counts may be named: "1B parameters", "100 million tissue patches",
# "1k-hour of audio" (a multiplier and a modifier or two in between), "participants: subtask A monolingual (126)".
_COUNT_WINDOW = 4
# The rest of a named question is judged on its own only when this many content words are left: "What problem does
# AnglE address?" leaves "problem", "address", whose margin is noise; "What is ClusterNS?" leaves nothing.
MIN_REST_TERMS = 3
_NAMED = re.compile(r"(?<=\s)[A-Z][\w\-]*[A-Z0-9][\w\-]*|\b(datasets?|benchmarks?|corpus|corpora|tasks?)\b")


# The words of every "not about ML research" refusal reason, for readers of stored answers (the feedback export
# tells an off-topic refusal from an absent model by them).
_FAR = "no abstract is close to the question"
_NOT_ML = "does not read as one about ML research"
OFF_TOPIC_REASONS = (_FAR, _NOT_ML)


@dataclass(frozen=True)
class Thresholds:
    """The decision's thresholds; their defaults and meaning live in one place, ``rag.settings.AnswerSettings``
    (and ``RetrievalSettings.min_similarity``)."""

    min_similarity: float
    min_margin: float
    min_margin_named: float
    min_detail: float
    companion_ratio: float
    companion_ratio_one: float
    companion_score_ratio: float
    companion_support_one: float
    min_rest_margin: float
    min_rest_support: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        a = settings.answer
        return cls(
            settings.retrieval.min_similarity,
            a.min_margin,
            a.min_margin_named,
            a.min_detail,
            a.companion_ratio,
            a.companion_ratio_one,
            a.companion_score_ratio,
            a.companion_support_one,
            a.min_rest_margin,
            a.min_rest_support,
        )


@dataclass(frozen=True)
class Quote:
    index: int  # sentence number in the abstract (quotes are shown in the abstract's order)
    text: str
    score: float  # lexical support of the question by this sentence (rag.citations.support)


@dataclass(frozen=True)
class PaperEvidence:
    source: Source
    quotes: tuple[Quote, ...]  # best first
    names: tuple[str, ...]  # the question's names this paper mentions
    detail: float  # how well its best sentence stating a value (a name) covers the detail asked for; 1 if none asked
    rest: float = 0.0  # how well its best sentence supports the question without the names it mentions (0: no names)

    @property
    def best(self) -> float:
        return self.quotes[0].score if self.quotes else 0.0


@dataclass(frozen=True)
class Evidence:
    """What the decision reads for one question: computed once (``Assistant.evidence``), decided on any thresholds
    (``decide_on``); the calibration re-decides it on a grid."""

    spec: QuestionSpec
    sources: tuple[Source, ...]
    papers: tuple[PaperEvidence, ...]
    top_similarity: float | None
    background: float | None
    notes: tuple[str, ...] = ()  # retrieval's notes for the user (a rewrite or rerank stage that fell back): flags
    rerank_ms: float | None = None
    rewrite_ms: float | None = None
    # The margin (rag.topicality) of the question without the names the abstracts mention; None when none of them
    # is technical (rag.question.technical), or too little is left (``rest_of_question``).
    rest_margin: float | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str = ""  # why refused or partial, in words a user reads
    missing: str = ""  # partial: the detail the abstracts do not give
    evidence: tuple[PaperEvidence, ...] = field(default=())  # papers to quote, the lead first


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _stems(words: Sequence[str]) -> set[str]:
    return set(english_stemmer().stemWords(list(words)))


def _qualifies(spec: QuestionSpec, sentence: str) -> bool:
    """Whether a sentence gives the kind of answer asked for: a value for a number (not one the question itself
    states, like the "2.0" of "wav2vec 2.0", nor a reference's year), counting what is counted when the question
    asks "how many" ("How many images…" is not answered by "1B parameters"); a name for a dataset; for a named thing
    ("Which backbone…"), a name the question does not give itself."""
    if spec.kind == "number":
        given = {m.group(0).lower() for m in _VALUE.finditer(canonical(spec.text))}
        text = _REFERENCE.sub(" ", canonical(sentence))
        values = [m for m in _VALUE.finditer(text) if m.group(0).lower() not in given]
        if not spec.counts:
            return bool(values)
        counted = _stems(_words(spec.detail))
        return any(
            _stems(_words(text[: m.start()])[-_COUNT_WINDOW:] + _words(text[m.end() :])[:_COUNT_WINDOW]) & counted
            for m in values
        )
    if spec.kind == "dataset":
        return _NAMED.search(f" {sentence}") is not None
    if spec.kind == "entity":
        asked = {t.lower() for t in spec.names}
        return any(t.lower() not in asked for t in specific_terms(sentence))
    return True


def _without(text: str, terms: Sequence[str]) -> str:
    for t in terms:
        text = re.sub(rf"(?<![\w\-]){re.escape(t)}(?:'s)?(?![\w\-])", " ", text, flags=re.IGNORECASE)
    return " ".join(text.split())


def rest_of_question(text: str, names: Sequence[str]) -> str | None:
    """``text`` without ``names`` ("What colour is BERT's sweater on Sesame Street?" -> "What colour is sweater on
    Sesame Street?"), or None when fewer than ``MIN_REST_TERMS`` content words are left."""
    rest = _without(text, sorted(names, key=len, reverse=True))
    return rest if len(content_terms(rest)) >= MIN_REST_TERMS else None


def found_names(papers: Sequence[PaperEvidence]) -> set[str]:
    """The question's names that at least one of ``papers`` mentions."""
    return {t for p in papers for t in p.names}


def rest_to_judge(text: str, papers: Sequence[PaperEvidence]) -> str | None:
    """What ``decide`` judges on its own (``Evidence.rest_margin``): the question without the names the papers
    mention, when one of them is technical and enough is left (``rest_of_question``); else None."""
    names = found_names(papers)
    return rest_of_question(text, sorted(names)) if any(technical(t) for t in names) else None


def paper_evidence(spec: QuestionSpec, source: Source, per_paper: int = 3) -> PaperEvidence:
    """The paper's sentences that best support the question, best first (those stating the kind of answer asked
    for first, by how well they name the detail asked), and how well it gives that detail. Independent of the
    thresholds, so calibration computes it once."""
    sentences = split_sentences(source.abstract) if source.abstract.strip() else []
    names = tuple(t for t in spec.names if mentions(f"{source.title} {source.abstract}", t))
    # The names this paper mentions are settled at the paper level: most of its sentences say "we" or "our model",
    # not "LLMLingua-2", and scoring them on the name would rank the one sentence that repeats it above the one
    # that answers ("our model is 3x-6x faster").
    claim = _without(spec.text, names)
    scored = [Quote(i, s, support(claim, canonical(s))[0]) for i, s in enumerate(sentences)]
    rest = max((q.score for q in scored), default=0.0) if names else 0.0
    if names and all(q.score == 0 for q in scored):
        # The question is little but its names ("What is ClusterNS?"): the sentence naming them defines them.
        scored = [Quote(i, s, support(spec.text, canonical(s))[0]) for i, s in enumerate(sentences)]
    qualifies = [_qualifies(spec, s) for s in sentences]
    # Without words naming the detail ("how much does it help?"), any sentence stating a value names it fully.
    on_detail = [support(spec.detail, canonical(s))[0] if spec.detail else 1.0 for s in sentences]
    ranked = sorted(scored, key=lambda q: (not qualifies[q.index], -on_detail[q.index], -q.score, q.index))
    if scored and all(q.score == 0 for q in scored):
        ranked = scored  # nothing overlaps (a question in other words): the opening says what the paper is about
    detail = 1.0
    if spec.kind in ("number", "dataset"):
        detail = max((d for d, ok in zip(on_detail, qualifies, strict=True) if ok), default=0.0)
    return PaperEvidence(source, tuple(ranked[:per_paper]), names, detail, rest)


def gather(spec: QuestionSpec, sources: Sequence[Source]) -> list[PaperEvidence]:
    return [paper_evidence(spec, s) for s in sources]


def _companion(spec: QuestionSpec, lead: PaperEvidence, other: PaperEvidence, th: Thresholds) -> bool:
    """Whether ``other`` is quoted beside the lead: it mentions the lead's names and its own best sentence supports
    the question about as well. A question about one paper ("Which method…", "What did SimCSE…") asks more:
    quoting the runners-up of retrieval padded such answers with papers that merely share the topic, so retrieval
    must also rate the paper close to the lead (``companion_score_ratio``); one it ranks far below the lead is
    another paper on the topic, not a second answer. And its sentence must support the question in its own right
    (``companion_support_one``): a question in other words than the abstracts' shares a word or two with every
    paper on the topic, the lead's best sentence included, and "about as well as the lead" then admits them all."""
    if not set(lead.names) <= set(other.names) or other.best <= 0:
        return False
    if spec.several:
        return other.best >= th.companion_ratio * lead.best
    return (
        other.best >= max(th.companion_ratio_one * lead.best, th.companion_support_one)
        and other.source.score >= th.companion_score_ratio * lead.source.score
    )


def decide_on(evidence: Evidence, th: Thresholds) -> Decision:
    return decide(
        evidence.spec,
        evidence.papers,
        evidence.top_similarity,
        evidence.background,
        th,
        rest_margin=evidence.rest_margin,
    )


def decide(
    spec: QuestionSpec,
    papers: Sequence[PaperEvidence],
    top_similarity: float | None,
    background: float | None,
    th: Thresholds,
    max_papers: int = 3,
    rest_margin: float | None = None,
) -> Decision:
    """``papers``: ``gather(spec, sources)``, best-ranked first; ``top_similarity``: best dense cosine of the
    question to a chunk (None: dense did not run); ``background``: its best cosine to an everyday domain
    (rag.topicality; None: not computed); ``rest_margin``: the same margin for the question without the names
    the abstracts mention (``Evidence.rest_margin``; None: not computed)."""
    if not papers:
        return Decision("refused", "nothing was retrieved")
    if top_similarity is not None and top_similarity < th.min_similarity:
        return Decision("refused", f"{_FAR} (best similarity {top_similarity:.2f})")
    found = found_names(papers)
    # A technical name the abstracts use ("SimCSE", "GPT-4") is evidence of topic that the embedding model may not
    # see: "What did SimCSE evaluate on?" embeds closer to "school, exams and teachers" than to any abstract. A
    # plain capitalised word ("Forest" of the Black Forest, found in "random forest") is no such evidence.
    named = sorted(t for t in found if technical(t))
    margin = th.min_margin_named if named else th.min_margin
    if top_similarity is not None and background is not None and top_similarity - background < margin:
        return Decision("refused", f"the question {_NOT_ML}")
    # But a name alone does not make a question technical: "What colour is BERT's sweater on Sesame Street?" is
    # about Sesame Street. Without its names it reads as everyday, and no sentence of an abstract that mentions the
    # name says anything else it asks ("colour", "sweater"); a question about the model shares its other words
    # with a sentence about it ("By how many points does ColD Fusion beat RoBERTa?").
    if named and rest_margin is not None and rest_margin < th.min_rest_margin:
        rest = max((p.rest for p in papers if any(technical(t) for t in p.names)), default=0.0)
        if rest < th.min_rest_support:
            return Decision(
                "refused",
                f"apart from {', '.join(named)} the question {_NOT_ML}, and no "
                "abstract mentioning it says more of what it asks",
            )
    absent = [t for t in spec.names if t not in found]
    if spec.names and not found:
        return Decision("refused", f"no retrieved abstract mentions {', '.join(absent)}")
    # The lead: the paper naming most of the question's names, then retrieval rank. (Letting a lower-ranked paper
    # with a better-matching sentence lead lost gold citations on the dev split: lexical overlap is what own-words
    # questions lack.)
    lead = max(papers, key=lambda p: (len(p.names), -papers.index(p)))
    if absent:
        return Decision("partial", f"no retrieved abstract mentions {', '.join(absent)}", ", ".join(absent), (lead,))
    if lead.detail < th.min_detail:
        what = spec.detail or ("the number asked for" if spec.kind == "number" else "the datasets asked for")
        return Decision("partial", f"the abstract does not give {what}", what, (lead,))
    companions = [p for p in papers if p is not lead and _companion(spec, lead, p, th)]
    return Decision("answered", evidence=(lead, *companions[: max_papers - 1]))
