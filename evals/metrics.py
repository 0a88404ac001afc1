"""Eval metrics: retrieval (via ranx), answers, refusals and citations.

Retrieval metrics are never hand-written: rankings go to ranx. A system ranking is turned into ranx scores by
rank (1/rank), so ties in the system's scores keep the order the system returned, and a paper returned twice
counts once, at its best rank.

Citation quality is judged ALCE-style by a pluggable :class:`~evals.judges.Judge`: by default the offline
lexical judge (``rag.citations.support`` >= ``JUDGE_THRESHOLD``), a proxy for an NLI judge, not one; with
``--judge llm`` an LLM answering yes/no (``evals.judges.LLMJudge``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from evals.judges import DEFAULT_THRESHOLD, Judge, LexicalJudge
from rag.answer import Answer
from rag.citations import LEADING_MARKERS, parse_markers
from rag.sentences import split_sentences

__all__ = [
    "JUDGE",
    "JUDGE_THRESHOLD",
    "RETRIEVAL_METRICS",
    "CitationScores",
    "Judge",
    "LexicalJudge",
    "RefusalScores",
    "answer_statements",
    "citation_scores",
    "citations_valid",
    "gold_citation_recall",
    "mean",
    "must_contain_hit",
    "percentile",
    "ranx_scores",
    "refusal_scores",
    "retrieval_scores",
]

JUDGE_THRESHOLD = DEFAULT_THRESHOLD
DEFAULT_JUDGE = LexicalJudge(JUDGE_THRESHOLD)
JUDGE = DEFAULT_JUDGE.name
RETRIEVAL_METRICS: tuple[str, ...] = ("ndcg@10", "recall@5", "recall@10", "mrr@10", "hit_rate@1", "hit_rate@5")
_EMPTY = "__no_result__"  # ranx needs at least one document per query in the run


def _rank_scores(ranking: Sequence[str]) -> dict[str, float]:
    """System order -> ranx scores: 1/rank, first occurrence wins (duplicates count once, at their best rank)."""
    scores: dict[str, float] = {}
    for rank, doc in enumerate(ranking, start=1):
        scores.setdefault(doc, 1.0 / rank)
    return scores or {_EMPTY: 0.0}


def retrieval_scores(
    gold: Mapping[str, Sequence[str]],
    rankings: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = RETRIEVAL_METRICS,
) -> dict[str, dict[str, float]]:
    """Per-query ranx metrics: ``gold`` qid -> relevant ids (binary relevance), ``rankings`` qid -> ranked ids.

    Queries without gold (unanswerable) are skipped; a query with gold but no ranking scores 0."""
    return ranx_scores({q: dict.fromkeys(g, 1) for q, g in gold.items() if g}, rankings, metrics)


def ranx_scores(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = RETRIEVAL_METRICS,
) -> dict[str, dict[str, float]]:
    """Per-query ranx metrics with graded judgments (trec_eval semantics): ``qrels`` qid -> doc -> grade, where a
    grade <= 0 means judged non-relevant (negative grades are clamped to 0) and nDCG's gain is the grade.

    Every query of ``qrels`` is scored, also one with no relevant document (it scores 0, as in trec_eval); a query
    with no ranking scores 0. Rankings become 1/rank scores (see ``_rank_scores``), so ranx sees no ties."""
    from ranx import Qrels, Run, evaluate

    qids = list(qrels)
    if not qids:
        return {}
    graded = {q: {doc: max(0, int(g)) for doc, g in qrels[q].items()} or {_EMPTY: 0} for q in qids}
    qrels_ = Qrels(graded)
    run = Run({q: _rank_scores(rankings.get(q, ())) for q in qids})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64 -> int64 cast warning inside ranx
        per_query = evaluate(qrels_, run, list(metrics), return_mean=False, make_comparable=True)
    if len(metrics) == 1:  # ranx returns a bare array for a single metric
        per_query = {metrics[0]: per_query}
    # ranx orders queries like the sorted qrels keys
    order = list(qrels_.keys())
    return {q: {m: float(per_query[m][i]) for m in metrics} for i, q in enumerate(order)}


def gold_citation_recall(gold: Sequence[str], cited: Iterable[str]) -> float:
    """Fraction of the gold papers that the answer cites (0 for a refusal: it cites nothing)."""
    if not gold:
        return math.nan
    cited_set = set(cited)
    return sum(g in cited_set for g in set(gold)) / len(set(gold))


def must_contain_hit(text: str, required: Sequence[str]) -> bool:
    """All required strings occur in the answer (case-insensitive, whitespace-normalised)."""
    norm = " ".join(text.split()).lower()
    return all(" ".join(r.split()).lower() in norm for r in required)


def citations_valid(answer: Answer) -> bool:
    """Every [n] in the text names one of the answer's citations (numbered [1]..[m] by first use, not by source
    number), and every cited paper is one of the sources shown to the answerer."""
    cited = {c.n for c in answer.citations}
    sources = {s.paper_id for s in answer.sources}
    markers_ok = all(n in cited for n in parse_markers(answer.text))
    return markers_ok and all(c.paper_id in sources for c in answer.citations)


@dataclass(frozen=True)
class CitationScores:
    """ALCE-style: recall = statements fully supported by the concatenation of their cited abstracts (a statement
    with no citation is unsupported); precision = citations that support their statement on their own, or are
    needed for the statement's support (removing them breaks it)."""

    recall: float
    precision: float
    statements: int
    citations: int


def _split_statements(text: str) -> list[str]:
    """Sentences line by line, a marker group that opens a sentence ("... noise.” [1] “Next ...") given back to the
    sentence before, which it cites (the sentence splitter attaches it to the next one)."""
    out: list[str] = []
    for line in text.split("\n"):
        sentences = [s.strip() for s in split_sentences(line)] if line.strip() else []
        for i, sentence in enumerate(sentences):
            lead = LEADING_MARKERS.match(sentence)
            if i and lead:
                out[-1] += " " + lead.group(0).strip()
                sentence = sentence[lead.end() :].strip()
            if sentence:
                out.append(sentence)
    return out


def answer_statements(answer: Answer) -> list[str]:
    """The statements ALCE scores: the checked answer's own sentences (``answer.sentences``, the segmentation the
    citation check and the UI use) or, for an answer built without the check, ``_split_statements``. A refusal has
    none; a lead-in line ending with ":" ("3 papers bear on this; ... quoted verbatim:") introduces statements and
    is not one."""
    if answer.refused:
        return []
    sentences = [s.sentence for s in answer.sentences] if answer.sentences else _split_statements(answer.text)
    return [s for s in sentences if s.strip() and not (s.rstrip().endswith(":") and not parse_markers(s))]


def citation_scores(answer: Answer, judge: Judge = DEFAULT_JUDGE) -> CitationScores:
    """ALCE citation recall/precision of ``answer``'s statements, each support decision made by ``judge``."""

    def _supported(claim: str, evidence: Sequence[str]) -> bool:
        return bool(evidence) and judge.supports(claim, list(evidence))

    abstracts = {s.paper_id: s.abstract for s in answer.sources}
    by_n = {c.n: abstracts.get(c.paper_id, "") for c in answer.citations}  # citations are renumbered [1]..[m]
    statements = answer_statements(answer)
    supported = 0
    relevant = 0
    total_cites = 0
    for sentence in statements:
        ns = [n for n in dict.fromkeys(parse_markers(sentence)) if by_n.get(n)]
        evidence = [by_n[n] for n in ns]
        full = _supported(sentence, evidence)
        supported += full
        for n in ns:
            total_cites += 1
            alone = _supported(sentence, [by_n[n]])
            needed = full and not _supported(sentence, [by_n[m] for m in ns if m != n])
            relevant += alone or needed
    return CitationScores(
        recall=supported / len(statements) if statements else math.nan,
        precision=relevant / total_cites if total_cites else math.nan,
        statements=len(statements),
        citations=total_cites,
    )


@dataclass(frozen=True)
class RefusalScores:
    """Answerable vs unanswerable. ``refusal_*``: a refusal is "correct" on an unanswerable question.
    ``answer_precision`` (LitQA2-style) = correct answers / questions answered, ``answer_accuracy`` = correct /
    asked, where "correct" is a refusal of an unanswerable question or an answer citing a gold paper."""

    refusal_accuracy: float  # refused == unanswerable
    refusal_precision: float  # correct refusals / refusals
    refusal_recall: float  # correct refusals / unanswerable questions
    false_refusal_rate: float  # refusals of answerable questions / answerable questions
    answer_precision: float
    answer_accuracy: float


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def refusal_scores(rows: Sequence[tuple[bool, bool, bool]]) -> RefusalScores:
    """``rows``: (answerable, refused, cites_gold) per question."""
    refusals = sum(r for _, r, _ in rows)
    unanswerable = sum(not a for a, _, _ in rows)
    answerable = len(rows) - unanswerable
    correct_refusals = sum((not a) and r for a, r, _ in rows)
    false_refusals = sum(a and r for a, r, _ in rows)
    correct_answers = sum(a and (not r) and g for a, r, g in rows)
    answered = len(rows) - refusals
    return RefusalScores(
        refusal_accuracy=_ratio(sum(r == (not a) for a, r, _ in rows), len(rows)),
        refusal_precision=_ratio(correct_refusals, refusals),
        refusal_recall=_ratio(correct_refusals, unanswerable),
        false_refusal_rate=_ratio(false_refusals, answerable),
        answer_precision=_ratio(correct_answers, answered),
        answer_accuracy=_ratio(correct_answers + correct_refusals, len(rows)),
    )


def mean(values: Iterable[float | None]) -> float:
    """Mean of the defined values (None and NaN skipped); NaN when there are none."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return sum(xs) / len(xs) if xs else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), NaN for no values."""
    if not values:
        return math.nan
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=float), q))
