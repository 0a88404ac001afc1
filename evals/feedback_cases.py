"""UI feedback (``<data_dir>/feedback.jsonl``, written by ``ui.feedback``) -> candidate rows for the curated set.

    python -m evals.run --from-feedback .rag/feedback.jsonl --out candidates.jsonl     (or: rag eval --from-feedback …)

Each candidate is a curated-set row (``id``, ``type``, ``question``, ``gold``, ``split``) with ``split:
"candidate"`` and ``needs_review: true``, plus ``votes``, ``hint`` and the answer that was voted on. The type and
gold are guesses made from the vote:

- thumbs-up on an answer with citations: gold = the cited papers; type ``keyword`` (the question names a cited
  title's word: an acronym, a CamelCase or digit-bearing name), ``followup`` (the searched query differs from the
  question: it was rewritten from a conversation; add its ``history``), ``multi`` (two or more papers cited) or
  ``paraphrase``;
- thumbs-up on a refusal: an unanswerable question, ``unanswerable_offtopic`` when it was refused as not about ML
  research (far from every abstract, or closer to an everyday question), else ``unanswerable_absent``;
- thumbs-down on a refusal: guessed unanswerable as above, but the user disagreed: a possible false refusal (the
  hint says so; if answerable, set its type and gold);
- thumbs-down on an answer: gold unknown (the cited papers are listed in ``not_gold``: the user rejected them).

Questions are deduplicated (case, spacing and trailing punctuation ignored; the latest vote gives the row, all
votes are counted) and questions already in the curated set are skipped. ``evals.data.load_questions`` rejects
``split: "candidate"`` and ``needs_review`` rows: a reviewer promotes a candidate by checking it, setting ``split``
to ``dev`` or ``test`` and deleting ``needs_review``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from evals.data import ANSWERABLE_TYPES, CANDIDATE_SPLIT, CURATED, DatasetError, QuestionType, corpus_ids
from rag.answerability import OFF_TOPIC_REASONS

__all__ = [
    "FeedbackRow",
    "candidate_problems",
    "candidates_from_feedback",
    "feedback_main",
    "normalise_question",
    "read_feedback",
    "write_candidates",
]

_NAME = re.compile(r"\b(?:[A-Za-z]*[A-Z][A-Za-z]*[A-Z0-9][\w-]*|[A-Za-z]+-?\d[\w-]*)\b")  # SimCSE, GPT-4, LLMLingua-2


@dataclass(frozen=True)
class FeedbackRow:
    """One parsed feedback line (``ui.feedback.feedback_record``)."""

    line: int
    vote: str
    question: str
    query: str
    answer: str
    refused: bool
    mode: str
    timestamp: str
    cited: tuple[str, ...]
    cited_titles: tuple[str, ...] = ()


def read_feedback(path: Path) -> tuple[list[FeedbackRow], list[str]]:
    """Rows of a feedback JSONL file, plus one ``file:line: reason`` per line that is not a usable row (a line cut
    off by a crash, a row without a question or vote): those are skipped, never fatal."""
    rows: list[FeedbackRow] = []
    skipped: list[str] = []
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            skipped.append(f"{where}: not a JSON object")
            continue
        vote, question = obj.get("vote"), obj.get("question")
        if vote not in ("up", "down"):
            skipped.append(f"{where}: vote must be 'up' or 'down', got {vote!r}")
            continue
        if not isinstance(question, str) or not question.strip():
            skipped.append(f"{where}: no question")
            continue
        citations = obj.get("citations") or []
        if not isinstance(citations, list):
            skipped.append(f"{where}: citations must be a list")
            continue
        cites = [c for c in citations if isinstance(c, dict) and isinstance(c.get("paper_id"), str)]
        rows.append(
            FeedbackRow(
                line=n,
                vote=vote,
                question=" ".join(question.split()),
                query=" ".join(str(obj.get("query") or question).split()),
                answer=str(obj.get("answer") or ""),
                refused=bool(obj.get("refused")),
                mode=str(obj.get("mode") or ""),
                timestamp=str(obj.get("timestamp") or ""),
                cited=tuple(dict.fromkeys(c["paper_id"] for c in cites)),
                cited_titles=tuple(str(c.get("title") or "") for c in cites),
            )
        )
    return rows, skipped


def normalise_question(question: str) -> str:
    """The dedup key: casefolded, whitespace collapsed, trailing punctuation dropped."""
    return " ".join(question.casefold().split()).rstrip(" ?!.")


def _answered_type(row: FeedbackRow) -> str:
    if row.query != row.question:
        return "followup"
    titles = " ".join(row.cited_titles).casefold()
    if any(name.casefold() in titles for name in _NAME.findall(row.question)):
        return "keyword"
    return "multi" if len(row.cited) >= 2 else "paraphrase"


def _refused_type(row: FeedbackRow) -> str:
    return "unanswerable_offtopic" if any(r in row.answer for r in OFF_TOPIC_REASONS) else "unanswerable_absent"


@dataclass
class _Group:
    rows: list[FeedbackRow] = field(default_factory=list)


def _candidate(rows: Sequence[FeedbackRow], known: frozenset[str] | None) -> dict[str, Any]:
    last = rows[-1]  # the latest vote decides; every vote is counted
    ups = sum(r.vote == "up" for r in rows)
    downs = len(rows) - ups
    gold: list[str] = []
    not_gold: list[str] = []
    hints: list[str] = []
    if last.refused:
        qtype = _refused_type(last)
        if last.vote == "down":
            hints.append("thumbs-down on a refusal: a false refusal? if answerable, set type and gold")
        else:
            hints.append("thumbs-up on a refusal: confirm no abstract answers it")
    elif last.vote == "up" and last.cited:
        qtype = _answered_type(last)
        gold = list(last.cited)
        hints.append("gold = the papers the approved answer cited: add any other qualifying paper")
        if qtype == "followup":
            hints.append("add the conversation's earlier questions as history")
    else:
        qtype = _answered_type(last) if last.cited else "paraphrase"
        not_gold = list(last.cited)
        why = "thumbs-down on the answer" if last.vote == "down" else "approved answer without citations"
        hints.append(f"{why}: gold unknown, find the paper(s) that answer it")
    if known is not None:
        unknown = [g for g in gold if g not in known]
        if unknown:
            gold = [g for g in gold if g in known]
            hints.append(f"cited ids not in the bundled corpus dropped: {', '.join(unknown)}")
    if ups and downs:
        hints.append(f"conflicting votes ({ups} up, {downs} down): the latest ({last.vote}) was used")
    digest = hashlib.sha1(normalise_question(last.question).encode()).hexdigest()[:10]
    return {
        "id": f"cand-{digest}",
        "type": qtype,
        "question": last.question,
        "gold": gold,
        "split": CANDIDATE_SPLIT,
        "needs_review": True,
        "votes": {"up": ups, "down": downs},
        "hint": "; ".join(hints),
        "not_gold": not_gold,
        "answer": last.answer,
        "refused": last.refused,
        "mode": last.mode,
        "timestamp": last.timestamp,
        "feedback_lines": [r.line for r in rows],
    }


def candidates_from_feedback(
    rows: Iterable[FeedbackRow], known_ids: Iterable[str] | None = None, existing: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Candidate rows, one per distinct question (first-seen order), skipping questions in ``existing``;
    ``known_ids`` (the corpus' paper ids) drops cited ids outside the corpus from ``gold``."""
    known = frozenset(known_ids) if known_ids is not None else None
    skip = {normalise_question(q) for q in existing}
    groups: dict[str, _Group] = {}
    for row in rows:
        key = normalise_question(row.question)
        if key in skip:
            continue
        groups.setdefault(key, _Group()).rows.append(row)
    return [_candidate(g.rows, known) for g in groups.values()]


def candidate_problems(row: dict[str, Any], known_ids: Iterable[str] | None = None) -> list[str]:
    """What is wrong with a candidate row against the curated set's schema (``evals.data``), [] when nothing:
    the fields and their types, a known question type, ``split == "candidate"`` with ``needs_review: true`` (so
    it cannot pass for a reviewed row), gold ids in the corpus, and no gold on an unanswerable type."""
    rid = row.get("id", "?")
    problems: list[str] = []
    for key, kind in (("id", str), ("question", str), ("type", str), ("gold", list), ("split", str)):
        if not isinstance(row.get(key), kind):
            problems.append(f"{rid}: {key!r} must be a {kind.__name__}")
    if problems:
        return problems
    if not row["question"].strip():
        problems.append(f"{rid}: empty question")
    if row["type"] not in get_args(QuestionType):
        problems.append(f"{rid}: unknown type {row['type']!r}")
    if row["split"] != CANDIDATE_SPLIT or row.get("needs_review") is not True:
        problems.append(f"{rid}: a candidate needs split {CANDIDATE_SPLIT!r} and needs_review true")
    if row["type"] not in ANSWERABLE_TYPES and row["gold"]:
        problems.append(f"{rid}: unanswerable type with gold papers")
    if len(set(row["gold"])) != len(row["gold"]):
        problems.append(f"{rid}: duplicate gold ids")
    if known_ids is not None:
        known = set(known_ids)
        problems += [f"{rid}: gold id {g!r} is not in the corpus" for g in row["gold"] if g not in known]
    return problems


def write_candidates(rows: Sequence[dict[str, Any]], out: Path, known_ids: Iterable[str] | None = None) -> None:
    """Validate every row (DatasetError listing all problems) and write them as JSON Lines."""
    known = frozenset(known_ids) if known_ids is not None else None
    problems = [p for row in rows for p in candidate_problems(row, known)]
    ids = [r.get("id") for r in rows]
    problems += [f"{i}: duplicate id" for i in sorted({i for i in ids if ids.count(i) > 1}, key=str)]
    if problems:
        raise DatasetError("invalid candidates:\n" + "\n".join(problems))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def feedback_main(feedback: Path, out: Path, curated: Path = CURATED) -> int:
    """``--from-feedback``: read, convert, validate, write; prints a summary. Exit 2 when the file is missing."""
    from evals.data import load_questions

    if not feedback.is_file():
        print(f"error: {feedback}: no such feedback file (the UI writes <data_dir>/feedback.jsonl)", file=sys.stderr)
        return 2
    rows, skipped = read_feedback(feedback)
    existing = [q.question for q in load_questions(curated)] if curated.is_file() else []
    candidates = candidates_from_feedback(rows, corpus_ids(), existing)
    write_candidates(candidates, out, corpus_ids())
    for s in skipped:
        print(f"skipped {s}", file=sys.stderr)
    by_type: dict[str, int] = {}
    for c in candidates:
        by_type[c["type"]] = by_type.get(c["type"], 0) + 1
    kinds = ", ".join(f"{t} {n}" for t, n in sorted(by_type.items())) or "none"
    print(
        f"{len(rows)} feedback rows ({len(skipped)} skipped) -> {len(candidates)} candidates ({kinds}) in {out}; "
        "review them (type, gold), set split to dev/test and remove needs_review to add them to the curated set"
    )
    return 0
