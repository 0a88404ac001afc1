"""Realistic synthetic corpora for scale runs: real sentences and title halves, recombined.

    .venv/bin/python benchmarks/synthetic_corpus.py 100000 /tmp/syn-100k.jsonl

Each synthetic abstract takes its sentence count from a real abstract and its sentences from the pool of all
real sentences; each title joins the head of one real title to the tail of another. So lengths, vocabulary and
term statistics match the bundled corpus, while every paper is distinct. Generated on demand (seeded), never
committed: 1M abstracts are ~1.3 GB of JSON lines.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["SentencePool", "synthetic_rows", "write_corpus"]

_CATEGORIES = ("cs.CL", "cs.LG", "cs.CV", "cs.AI", "cs.IR", "eess.AS", "stat.ML")


@dataclass(frozen=True)
class SentencePool:
    sentences: tuple[str, ...]
    sentence_counts: tuple[int, ...]  # one per real abstract
    title_heads: tuple[str, ...]
    title_tails: tuple[str, ...]

    @classmethod
    def from_corpus(cls, corpus_dir: Path) -> SentencePool:
        from ingest.dedup import dedup
        from ingest.formats import read_paths
        from rag.sentences import split_sentences

        papers = dedup(read_paths([corpus_dir])[0].records)
        sentences: list[str] = []
        counts: list[int] = []
        heads: list[str] = []
        tails: list[str] = []
        for p in papers:
            parts = split_sentences(p.abstract)
            sentences.extend(parts)
            counts.append(len(parts))
            if ":" in p.title:
                head, tail = p.title.split(":", 1)
                heads.append(head.strip())
                tails.append(tail.strip())
            else:
                words = p.title.split()
                heads.append(" ".join(words[: max(1, len(words) // 2)]))
                tails.append(" ".join(words[max(1, len(words) // 2) :]) or words[-1])
        return cls(tuple(sentences), tuple(counts), tuple(heads), tuple(tails))


def synthetic_rows(pool: SentencePool, n: int, seed: int = 0) -> Iterator[dict[str, object]]:
    """``n`` JSON-lines rows (``id``, ``title``, ``abstract``, ``year``, ``categories``), deterministic."""
    rng = random.Random(seed)
    for i in range(n):
        k = rng.choice(pool.sentence_counts)
        abstract = " ".join(rng.choice(pool.sentences) for _ in range(k))
        title = f"{rng.choice(pool.title_heads)}: {rng.choice(pool.title_tails)}"
        yield {
            "id": f"syn-{i:07d}",
            "title": title,
            "abstract": abstract,
            "year": rng.randint(2015, 2025),
            "categories": " ".join(rng.sample(_CATEGORIES, rng.randint(1, 2))),
        }


def write_corpus(path: Path, n: int, corpus_dir: Path, seed: int = 0) -> Path:
    pool = SentencePool.from_corpus(corpus_dir)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        for row in synthetic_rows(pool, n, seed):
            f.write(json.dumps(row) + "\n")
    tmp.rename(path)  # a killed generation never leaves a truncated corpus under the final name
    return path


if __name__ == "__main__":
    from rag.settings import Settings

    write_corpus(Path(sys.argv[2]), int(sys.argv[1]), Settings().corpus_dir)
