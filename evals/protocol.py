"""The own-words protocol, checked by code: a question that describes a paper must not reuse its wording.

A question written "the way users ask" describes a paper's problem, method or result without knowing the paper's
words. Curated sets written by reading an abstract drift towards its vocabulary (our first "paraphrase" slice
scored 1.000 with BM25-heavy hybrid retrieval while users' own wording scored 0.50), so the rule is enforced here,
for every question of type ``own_words`` (one gold paper):

1. No *distinctive* stemmed content word of the gold paper's title: title stems that occur in fewer than
   ``COMMON_DF`` of the corpus's papers ("learning", "model", "language" stay allowed; "contrastive", "sentence",
   "negative", "clustering" in "Clustering-Aware Negative Sampling for Unsupervised Sentence Representation" do not).
2. At most ``MAX_RARE`` of the abstract's rare stems (document frequency ≤ ``RARE_DF`` of the papers: names,
   datasets, coined terms).
3. At least ``MIN_WORDS`` words.

``broad`` questions (several gold papers) name a topic, so they may use its words; they need ≥ 2 gold papers.
The dev and test splits of ``own_words`` must not share a gold paper (no tuning on a paper that is tested).

The rules above still let a question share ordinary topic words with its abstract ("robot", "video", "graph"),
and in a corpus of 872 papers those words alone find most papers (BM25 nDCG@10 0.87 on such questions). So each
own_words question is also sliced by its *vocabulary overlap*: the stemmed content words it shares with its
gold title + abstract, not counting the corpus's common words. ``NO_VOCABULARY`` (≤ 1 shared word) is the
"described without its vocabulary" slice, where a user who does not know the field's terms stands.

    python -m evals.protocol evals/datasets/own_words_dev.jsonl          # lists every violation; exit 1 if any
    python -m evals.protocol --max-shared 1 FILE                          # also require ≤ 1 shared word
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from rag.stemming import english_stemmer

__all__ = [
    "COMMON_DF",
    "MAX_RARE",
    "MIN_WORDS",
    "NO_VOCABULARY",
    "RARE_DF",
    "ProtocolChecker",
    "bundled_checker",
    "check_file",
]

COMMON_DF = 0.10  # title stems in at least 10 % of papers are everyday ML words, allowed
RARE_DF = 0.02  # stems in at most 2 % of papers (≤ 17 of the 872 bundled ones) are an abstract's rare words
MAX_RARE = 2
MIN_WORDS = 6
NO_VOCABULARY = 1  # at most this many shared non-common words: the "no vocabulary" slice

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_stems(text: str) -> set[str]:
    """Stemmed content words: lower-cased tokens of two or more characters, English stop words dropped."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _stop_words()]
    return set(english_stemmer().stemWords(words))


@dataclass(frozen=True)
class Violation:
    qid: str
    rule: str
    words: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.qid}: {self.rule}" + (f" ({', '.join(self.words)})" if self.words else "")


class ProtocolChecker:
    """Checks questions against the corpus's titles and abstracts (``papers``: paper_id -> (title, abstract))."""

    def __init__(self, papers: dict[str, tuple[str, str]]) -> None:
        self.papers = papers
        self.n = len(papers)
        self.title_stems = {pid: content_stems(t) for pid, (t, _) in papers.items()}
        self.abstract_stems = {pid: content_stems(f"{t} {a}") for pid, (t, a) in papers.items()}
        self.df: Counter[str] = Counter()
        for stems in self.abstract_stems.values():
            self.df.update(stems)

    def distinctive_title_stems(self, pid: str) -> set[str]:
        return {s for s in self.title_stems[pid] if self.df[s] < COMMON_DF * self.n}

    def rare_stems(self, pid: str) -> set[str]:
        return {s for s in self.abstract_stems[pid] if self.df[s] <= math.floor(RARE_DF * self.n)}

    def shared_words(self, question: str, pid: str) -> list[str]:
        """Stemmed content words the question shares with the paper's title + abstract, common words aside."""
        return sorted(s for s in content_stems(question) & self.abstract_stems[pid] if self.df[s] < COMMON_DF * self.n)

    def vocabulary_slice(self, question: str, gold: Sequence[str]) -> str:
        """ "no vocabulary" or "some vocabulary" for a one-paper question (see the module docstring)."""
        shared = self.shared_words(question, gold[0]) if len(gold) == 1 and gold[0] in self.papers else []
        return "no vocabulary" if len(shared) <= NO_VOCABULARY else "some vocabulary"

    def check(self, row: dict[str, object], max_shared: int | None = None) -> list[Violation]:
        qid = str(row.get("id"))
        question = str(row.get("question", ""))
        gold = [str(g) for g in row.get("gold", [])]  # type: ignore[attr-defined]
        out = [Violation(qid, f"gold paper {g!r} is not in the corpus") for g in gold if g not in self.papers]
        if out:
            return out
        if len(question.split()) < MIN_WORDS:
            out.append(Violation(qid, f"shorter than {MIN_WORDS} words"))
        q = content_stems(question)
        if row.get("type") == "own_words":
            if len(gold) != 1:
                return [*out, Violation(qid, "an own_words question has exactly one gold paper")]
            title = sorted(q & self.distinctive_title_stems(gold[0]))
            if title:
                out.append(Violation(qid, "reuses distinctive title words", tuple(title)))
            rare = sorted(q & self.rare_stems(gold[0]))
            if len(rare) > MAX_RARE:
                out.append(Violation(qid, f"reuses more than {MAX_RARE} rare abstract words", tuple(rare)))
            shared = self.shared_words(question, gold[0])
            if max_shared is not None and len(shared) > max_shared:
                out.append(Violation(qid, f"shares more than {max_shared} non-common words", tuple(shared)))
        elif row.get("type") == "broad" and len(gold) < 2:
            out.append(Violation(qid, "a broad question has at least two gold papers"))
        return out

    def check_all(self, rows: Sequence[dict[str, object]], max_shared: int | None = None) -> list[Violation]:
        out = [v for row in rows for v in self.check(row, max_shared)]
        by_split: dict[str, set[str]] = {}
        for row in rows:
            if row.get("type") == "own_words":
                by_split.setdefault(str(row.get("split")), set()).update(str(g) for g in row.get("gold", []))  # type: ignore[attr-defined]
        for pid in sorted(by_split.get("dev", set()) & by_split.get("test", set())):
            out.append(Violation(pid, "gold paper of own_words questions in both the dev and the test split"))
        texts = Counter(" ".join(str(r.get("question", "")).lower().split()) for r in rows)
        out += [Violation(t[:60], "duplicate question") for t, c in texts.items() if c > 1]
        return out


def bundled_checker(corpus: Path | None = None) -> ProtocolChecker:
    from ingest.dedup import dedup
    from ingest.formats import read_paths
    from rag.settings import BUNDLED_CORPUS

    papers = dedup(read_paths([corpus or BUNDLED_CORPUS])[0].records)
    return ProtocolChecker({p.paper_id: (p.title, p.abstract) for p in papers})


def _rows(lines: Iterable[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines if line.strip()]


def check_file(path: Path, checker: ProtocolChecker | None = None, max_shared: int | None = None) -> list[Violation]:
    rows = _rows(path.read_text(encoding="utf-8").splitlines())
    return (checker or bundled_checker()).check_all(rows, max_shared)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check question files against the own-words protocol.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--max-shared", type=int, help="also require at most this many shared non-common words")
    args = parser.parse_args(argv)
    checker = bundled_checker()
    bad = 0
    for path in args.files:
        for v in check_file(path, checker, args.max_shared):
            print(f"{path.name}: {v}")
            bad += 1
    print(f"{bad} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
