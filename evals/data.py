"""The curated eval set: typed questions, loading and validation against the bundled corpus.

>>> questions = load_questions(split="test")
>>> validate(questions, corpus_ids())   # raises DatasetError listing every problem
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, cast, get_args

__all__ = [
    "ANSWERABLE_TYPES",
    "CANDIDATE_SPLIT",
    "CURATED",
    "DATASETS",
    "HONESTY",
    "NEAR_MISS_TYPES",
    "UNANSWERABLE_TYPES",
    "DatasetError",
    "EvalQuestion",
    "QuestionType",
    "Split",
    "all_files",
    "corpus_ids",
    "load_all",
    "load_questions",
    "own_words_files",
    "validate",
]

QuestionType = Literal[
    "paraphrase",
    "keyword",
    "fact",
    "multi",
    "followup",
    "own_words",
    "broad",
    "near_miss",
    "unanswerable_offtopic",
    "unanswerable_absent",
]
Split = Literal["dev", "test"]
CANDIDATE_SPLIT = "candidate"  # rows made from UI feedback: rejected by load_questions until reviewed
ANSWERABLE_TYPES: tuple[str, ...] = ("paraphrase", "keyword", "fact", "multi", "followup", "own_words", "broad")
# Near misses: the paper may exist, but the detail asked for is not in any abstract; the honest outcomes are
# "partial" (the paper found, the gap named) or "refused".
NEAR_MISS_TYPES: tuple[str, ...] = ("near_miss",)
UNANSWERABLE_TYPES: tuple[str, ...] = ("unanswerable_offtopic", "unanswerable_absent")
DATASETS = Path(__file__).resolve().parent / "datasets"
CURATED = DATASETS / "curated.jsonl"
HONESTY = DATASETS / "honesty.jsonl"  # near misses, ML-sounding off-topic questions, facts asked as users ask
BUNDLED = Path(__file__).resolve().parent.parent / "data" / "hf-papers"


class DatasetError(ValueError):
    """The eval file is malformed or names papers that are not in the corpus."""


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    type: QuestionType
    question: str
    gold: tuple[str, ...]  # full paper_ids; empty for unanswerable questions
    split: Split
    must_contain: tuple[str, ...] = ()  # fact questions: strings (verbatim from the abstract) a correct answer includes
    history: tuple[str, ...] = ()  # followup questions: the earlier questions of the conversation, oldest first
    missing: str = ""  # near misses: the detail no abstract gives
    aspect: str = ""  # own_words questions: "problem", "method" or "result"

    @property
    def answerable(self) -> bool:
        return self.type in ANSWERABLE_TYPES

    @property
    def expected(self) -> tuple[str, ...]:
        """The outcomes that count as honest for this question."""
        if self.answerable:
            return ("answered",)
        if self.type in (*NEAR_MISS_TYPES, "unanswerable_absent"):
            # A model, benchmark or result no abstract mentions: refusing, or answering what the abstracts do say
            # while naming what they lack, are both honest; presenting it as answered is not.
            return ("partial", "refused")
        return ("refused",)

    @classmethod
    def from_dict(cls, row: dict[str, object]) -> EvalQuestion:
        qtype = row.get("type")
        if qtype not in get_args(QuestionType):
            raise DatasetError(f"{row.get('id')}: unknown type {qtype!r}")
        split = row.get("split")
        if split == CANDIDATE_SPLIT or row.get("needs_review"):
            # Feedback candidates (evals.feedback_cases) are unreviewed guesses: they never enter a split silently.
            raise DatasetError(
                f"{row.get('id')}: an unreviewed candidate (split {split!r}, needs_review "
                f"{row.get('needs_review')!r}): check its type and gold, set split to 'dev' or 'test' and remove "
                "needs_review before adding it to the curated set"
            )
        if split not in get_args(Split):
            raise DatasetError(f"{row.get('id')}: split must be 'dev' or 'test', not {split!r}")
        return cls(
            id=str(row["id"]),
            type=cast(QuestionType, qtype),
            question=str(row["question"]),
            gold=tuple(str(g) for g in _list(row.get("gold", []))),
            split=cast(Split, split),
            must_contain=tuple(str(s) for s in _list(row.get("must_contain", []))),
            history=tuple(str(h) for h in _list(row.get("history", []))),
            missing=str(row.get("missing", "")),
            aspect=str(row.get("aspect", "")),
        )


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise DatasetError(f"expected a list, got {value!r}")
    return value


def own_words_files() -> list[Path]:
    """The own-words question sets (one file per split, written by different people: see docs/evals.md)."""
    return sorted(DATASETS.glob("own_words_*.jsonl"))


def all_files() -> list[Path]:
    """Every question set the eval runner reads by default."""
    return [CURATED, *own_words_files(), *([HONESTY] if HONESTY.is_file() else [])]


def load_all(split: Split | None = None) -> list[EvalQuestion]:
    return [q for path in all_files() for q in load_questions(path, split)]


def load_questions(path: Path = CURATED, split: Split | None = None) -> list[EvalQuestion]:
    """Questions from a JSONL file (one object a line), optionally one split only."""
    out: list[EvalQuestion] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: not JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{lineno}: expected a JSON object")
        try:
            q = EvalQuestion.from_dict(row)
        except (DatasetError, KeyError) as exc:
            raise DatasetError(f"{path}:{lineno}: {exc}") from exc
        if split is None or q.split == split:
            out.append(q)
    return out


@cache
def _bundled_ids(corpus: Path) -> frozenset[str]:
    from ingest.dedup import dedup
    from ingest.formats import read_paths

    return frozenset(p.paper_id for p in dedup(read_paths([corpus])[0].records))


def corpus_ids(corpus: Path = BUNDLED) -> frozenset[str]:
    """The paper_ids of the (deduplicated) corpus, as the ingest pipeline assigns them."""
    return _bundled_ids(corpus.resolve())


def validate(questions: Sequence[EvalQuestion], known_ids: Iterable[str]) -> None:
    """Raise DatasetError listing every problem: unknown gold ids, duplicate question ids, answerable questions
    without gold (or unanswerable ones with gold), fact questions without must_contain, followups without history."""
    known = set(known_ids)
    problems: list[str] = []
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            problems.append(f"{q.id}: duplicate id")
        seen.add(q.id)
        if not q.question.strip():
            problems.append(f"{q.id}: empty question")
        problems += [f"{q.id}: gold id {g!r} is not in the corpus" for g in q.gold if g not in known]
        if len(set(q.gold)) != len(q.gold):
            problems.append(f"{q.id}: duplicate gold ids")
        if q.answerable and not q.gold:
            problems.append(f"{q.id}: answerable question without gold papers")
        if q.type in UNANSWERABLE_TYPES and q.gold:
            problems.append(f"{q.id}: unanswerable question with gold papers")
        if q.type == "fact" and not q.must_contain:
            problems.append(f"{q.id}: fact question without must_contain")
        if q.type == "followup" and not q.history:
            problems.append(f"{q.id}: followup question without history")
    if problems:
        raise DatasetError("invalid eval set:\n" + "\n".join(problems))
