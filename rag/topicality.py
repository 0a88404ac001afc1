"""Is a question about ML research at all? A nearest-prototype check with the same embedding model.

A dense-similarity floor alone cannot tell "How many players does a volleyball team field?" from a terse ML
question: both sit near 0.2-0.3 cosine to the nearest abstract, because every everyday word ("team", "training",
"transformer", "batch") also occurs in ML abstracts. What separates them is what *else* the question is close to.
So the question is also compared with short descriptions of everyday domains (below; written once as a list of
what people ask search engines about, not from any eval question) and its *margin* is

    margin = best cosine to an indexed chunk - best cosine to an everyday-domain description

A question about ML research is closer to the abstracts than to "recipes for cooking"; an everyday question
that borrows ML words is closer to its domain. The refusal threshold on the margin is chosen on the dev split
(docs/evals.md); the prototypes are embedded once per embedder as queries (all-MiniLM-L6-v2 is symmetric, and
a question's vector is a query vector), and cached in memory (50 short texts, ~0.2 s).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.protocols import QueryEmbedder

__all__ = ["EVERYDAY_DOMAINS", "Topicality"]

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


class Topicality:
    """``background(vec)``: the best cosine of a question vector to an everyday domain."""

    def __init__(self, embedder: QueryEmbedder, domains: Sequence[str] = EVERYDAY_DOMAINS) -> None:
        self.embedder = embedder
        self.domains = tuple(domains)
        self._vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        """The domains' unit vectors, one row each (embedded on first use)."""
        if self._vectors is None:
            m = np.asarray([self.embedder.get_query_embedding(d) for d in self.domains], dtype=np.float32)
            self._vectors = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        return self._vectors

    def background(self, query_vector: Sequence[float]) -> float:
        q = np.asarray(query_vector, dtype=np.float32)
        return float((self.vectors() @ q).max() / max(float(np.linalg.norm(q)), 1e-12))
