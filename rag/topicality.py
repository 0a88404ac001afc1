"""Is a question about ML research at all? A nearest-prototype check with the same embedding model.

A dense-similarity floor alone cannot tell "How many players does a volleyball team field?" from a terse ML
question: both sit near 0.2-0.3 cosine to the nearest abstract, because every everyday word ("team", "training",
"transformer", "batch") also occurs in ML abstracts. What separates them is what *else* the question is close to.
So the question is also compared with short descriptions of everyday domains (below; written once as a list of
what people ask search engines about, not from any eval question) and its *margin* is

    margin = best cosine to an indexed chunk - best cosine to an everyday-domain description

A question about ML research is closer to the abstracts than to "recipes for cooking"; an everyday question
that borrows ML words is closer to its domain. The refusal threshold on the margin is chosen on the dev split
(docs/evals.md).

Descriptions alone missed everyday questions phrased like a research question around an ML homonym ("What does
YOLO mean in texting?", "How many eggs does a mamba lay?"): a comma list of domain words is far from any
question. So the prototypes also hold ~470 everyday questions (``everyday_questions.txt``), written once by
someone who saw no eval question: ~290 plain ones over the domains below, ~180 using ML words in their everyday
sense (a power transformer, Python the snake, a batch of cookies, a hair clip). A question's background is its
best cosine to any prototype.

The prototypes are embedded once per embedding model (batched, ~1.5 s for the bundled one on 2 cores) and cached
in the model directory, shared by every data dir; the cache is checked against a fresh vector of the first
prototype, so another model (or a test's fake embedder) never reads vectors that are not its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from rag.protocols import QueryEmbedder

__all__ = ["EVERYDAY_DOMAINS", "EVERYDAY_QUESTIONS", "Topicality", "everyday_prototypes"]

EVERYDAY_DOMAINS: tuple[str, ...] = (
    "cooking recipes, baking bread and cakes, kitchen tips",
    "restaurants, food, drinks, coffee, tea, wine and beer",
    "nutrition, diets, calories and healthy eating",
    "football, soccer, basketball, baseball and other team sports, players, matches and scores",
    "tennis, golf, running, marathons, cycling and swimming",
    "gym workouts, fitness training, weight lifting and exercise routines",
    "medical symptoms, doctors, medicines, vaccines and treatments",
    "mental health, stress, sleep, anxiety and therapy",
    "pregnancy, babies, toddlers, parenting and child development",
    "pets, dogs, cats, puppies, training and caring for animals",
    "gardening, plants, flowers, lawns and vegetables",
    "home repair, plumbing, electrical wiring, power supplies and household appliances",
    "cars, car repair, tyres, engines, driving and traffic",
    "bicycles, motorcycles and their maintenance",
    "travel, flights, hotels, visas, tourism and holidays",
    "geography, countries, capitals, cities, rivers and mountains",
    "history, wars, kings, empires and historical events",
    "politics, elections, governments, laws and courts",
    "personal finance, banks, loans, mortgages, taxes and interest rates",
    "stock market, investing, shares, crypto and the economy",
    "jobs, careers, salaries, job interviews and resumes",
    "school, homework, university admissions, exams and teachers",
    "learning a language, grammar, vocabulary and spelling",
    "music, songs, bands, guitars, pianos and concerts",
    "movies, television series, actors and celebrities",
    "books, novels, authors, poems and literature",
    "video games, board games, chess and puzzles",
    "fashion, clothes, shoes, makeup and beauty",
    "weather, climate, seasons, rain and storms",
    "astronomy, planets, stars, the moon and space travel",
    "chemistry, elements, reactions and everyday physics like boiling points",
    "biology of the human body, animals and plants",
    "religion, philosophy, ethics and the meaning of life",
    "relationships, dating, marriage, friends and family",
    "shopping, prices, discounts and product reviews",
    "smartphones, laptops, printers, wifi routers and fixing computer problems",
    "social media accounts, passwords and using apps",
    "real estate, renting and buying houses and apartments",
    "weddings, birthdays, parties and holidays like Christmas",
    "art, painting, drawing, photography and crafts",
    "dance, theatre and performing arts",
    "outdoor activities, hiking, camping, fishing and hunting",
    "public transport, trains, buses and commuting",
    "energy bills, electricity, heating and solar panels at home",
    "cleaning, laundry, stains and household chores",
    "time management, productivity and studying habits",
    "trivia questions, quizzes and general knowledge facts",
    "famous people, sports teams and championships",
    "insurance, pensions and retirement",
    "manufacturing, factories, pipelines, oil and gas companies",
)


EVERYDAY_QUESTIONS: tuple[str, ...] = tuple(
    line.strip()
    for line in resources.files("rag").joinpath("everyday_questions.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
)


def everyday_prototypes(questions: bool = True) -> tuple[str, ...]:
    """The domain descriptions, and the everyday questions unless ``questions`` is off
    (``RAG_ANSWER__EVERYDAY_QUESTIONS``)."""
    return EVERYDAY_DOMAINS + (EVERYDAY_QUESTIONS if questions else ())


# Same model, same vector: a cached matrix whose first row is this close to a fresh one was made by this embedder.
_SAME_MODEL_COSINE = 0.999


class Topicality:
    """``background(vec)``: the best cosine of a question vector to an everyday prototype (a domain description
    or an everyday question). ``cache_dir``: where the prototypes' vectors are kept between processes (None: in
    memory only)."""

    def __init__(
        self,
        embedder: QueryEmbedder,
        prototypes: Sequence[str] | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.embedder = embedder
        self.prototypes = tuple(prototypes) if prototypes is not None else everyday_prototypes()
        self.cache_dir = cache_dir
        self._vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        """The prototypes' unit vectors, one row each (embedded on first use, or read from the cache)."""
        if self._vectors is None:
            first = _unit(np.asarray([self.embedder.get_query_embedding(self.prototypes[0])], dtype=np.float32))
            cached = self._read_cache(first[0])
            self._vectors = cached if cached is not None else self._embed_all(first[0])
        return self._vectors

    def background(self, query_vector: Sequence[float]) -> float:
        q = np.asarray(query_vector, dtype=np.float32)
        return float((self.vectors() @ q).max() / max(float(np.linalg.norm(q)), 1e-12))

    def _embed_all(self, first: np.ndarray) -> np.ndarray:
        # A batch is ~1.6x faster for the bundled model, which embeds a query and a text alike; a model that does
        # not (a query instruction), or a query-only embedder (the protocol's minimum), goes one query at a time.
        batch = getattr(self.embedder, "get_text_embedding_batch", None)
        m = _unit(np.asarray(batch(list(self.prototypes)), dtype=np.float32)) if batch else None
        if m is None or float(m[0] @ first) < _SAME_MODEL_COSINE:
            rows = [self.embedder.get_query_embedding(t) for t in self.prototypes]
            m = _unit(np.asarray(rows, dtype=np.float32))
        self._write_cache(m)
        return m

    def _cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        # The model's name keeps one file per model (a test's fake embedder never evicts the bundled model's).
        model = str(getattr(self.embedder, "model_name", type(self.embedder).__name__))
        digest = hashlib.sha256("\n".join((model, *self.prototypes)).encode()).hexdigest()[:16]
        return self.cache_dir / f"everyday-{digest}.npy"

    def _read_cache(self, first: np.ndarray) -> np.ndarray | None:
        path = self._cache_path()
        if path is None or not path.is_file():
            return None
        try:
            m = np.load(path)
        except (OSError, ValueError):
            return None  # a truncated or foreign file: embed again and replace it
        if m.shape != (len(self.prototypes), first.shape[0]) or float(m[0] @ first) < _SAME_MODEL_COSINE:
            return None  # another embedding model's vectors
        return m  # type: ignore[no-any-return]

    def _write_cache(self, m: np.ndarray) -> None:
        path = self._cache_path()
        if path is None:
            return
        # Atomic (a reader never sees half a file); a read-only model dir only costs the next process the embedding.
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, m)
            os.replace(tmp, path)


def _unit(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)  # type: ignore[no-any-return]
