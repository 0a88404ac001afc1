"""The public API: one core that the CLI, the Gradio UI and the eval harness all call.

>>> from rag import Assistant
>>> assistant = Assistant.open()                     # ingests the bundled corpus if the index is empty
>>> answer = assistant.ask("Which methods mine hard negatives with clustering for sentence embeddings?")
>>> answer.text, answer.citations, answer.refused
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict, Unpack

from rag.answer import Answer, Outcome
from rag.answerability import Decision, Evidence, Thresholds, decide_on, gather, rest_to_judge
from rag.citations import CheckedAnswer, check_answer
from rag.extractive import EXTRACTIVE_NOTE, extractive_answer
from rag.markup import neutralize
from rag.prompts import NOT_COVERED, parse_partial
from rag.protocols import ChatModel, Embedder
from rag.question import analyse
from rag.retrieve import Filters, PaperHit, Retriever
from rag.settings import Settings
from rag.store import ChunkStore
from rag.text_normalize import normalize_text
from rag.topicality import Topicality, everyday_prototypes
from rag.types import Mode, Paper, Source

__all__ = ["MAX_QUESTION_CHARS", "AskOptions", "Assistant", "Conversation", "Turn"]

MAX_QUESTION_CHARS = 4_000
_FOLLOW_UP = re.compile(r"\b(they|them|their|it|its|this|that|these|those|the paper|the method|he|she)\b", re.I)


@dataclass
class Turn:
    question: str
    answer: Answer


class AskOptions(TypedDict, total=False):
    """Per-call overrides of ``Assistant.ask``/``stream`` (see ``stream``)."""

    k: int | None
    mode: Mode | str | None
    filters: Filters | None
    history: Sequence[Turn]
    llm: ChatModel | None
    extractive: bool


def _validate(question: str) -> str:
    q = normalize_text(question).text.strip()
    if not q:
        raise ValueError("empty question: ask something about the indexed papers")
    if len(q) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"question too long ({len(q):,} characters; limit {MAX_QUESTION_CHARS:,}): ask about one thing at a time"
        )
    return q


def _k(k: int | None, settings: Settings) -> int:
    if k is None:
        return settings.retrieval.k
    if k <= 0:  # an explicit 0 is a mistake to report, not a request for the default
        raise ValueError(f"k must be at least 1 (got {k}); leave it out for the default ({settings.retrieval.k})")
    return k


def standalone_query(question: str, history: Sequence[Turn]) -> str:
    """Deterministic follow-up rewrite (no LLM): a question that leans on the previous turn ("they", "it",
    "this method", or very short) is searched together with the previous query and the papers it cited."""
    if not history:
        return question
    last = history[-1]
    if not (_FOLLOW_UP.search(question) or len(question.split()) <= 4):
        return question
    cited = "; ".join(c.title for c in last.answer.citations[:2])
    context = cited or last.answer.query
    return f"{question} ({context})"


class Assistant:
    """Grounded answers with verified citations over the indexed abstracts."""

    def __init__(self, settings: Settings, retriever: Retriever, llm: ChatModel | None = None) -> None:
        self.settings = settings
        self.retriever = retriever
        self.llm = llm
        everyday = everyday_prototypes(settings.answer.everyday_questions)
        self.topicality = Topicality(retriever.embedder, everyday, cache_dir=settings.models_dir)
        self.thresholds = Thresholds.from_settings(settings)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        store: ChunkStore | None = None,
        embedder: Embedder | None = None,
        llm: ChatModel | None = None,
        ingest_if_empty: bool = True,
    ) -> Assistant:
        """Build clients from settings (or use the ones given); ingest the bundled corpus into an empty index."""
        from rag.embeddings import build_embedder
        from rag.store import open_store

        settings = settings or Settings()
        store = store or open_store(settings)
        embedder = embedder or build_embedder(settings.embedding, settings.models_dir)
        if ingest_if_empty and store.count() == 0:
            from rag.corpus_loader import installed_loader

            installed_loader()(settings, store, embedder)
        if llm is None and settings.llm.provider != "none":
            from rag.llms import build_llm

            llm = build_llm(settings.llm)
        reranker = None
        if settings.rerank.provider != "none":
            from rag.rerank import build_reranker

            reranker = build_reranker(settings.rerank, llm)
        rewriter = None
        if settings.rewrite.mode != "none":
            from rag.rewrite import build_rewriter

            rewriter = build_rewriter(settings.rewrite, llm)
        retriever = Retriever.open(settings, store, embedder, reranker, rewriter)
        return cls(settings, retriever, llm)

    @property
    def mode_note(self) -> str:
        if self.llm is None:
            return EXTRACTIVE_NOTE  # no rag.llms import (openai, httpx) on the offline path
        from rag.llms import describe

        return describe(self.settings.llm)

    def retrieve(
        self, query: str, k: int | None = None, mode: Mode | str | None = None, filters: Filters | None = None
    ) -> list[PaperHit]:
        """Ranked papers (paper_id, title, score, best chunk), no LLM."""
        return self.retriever.retrieve(
            _validate(query), _k(k, self.settings), mode or self.settings.retrieval.mode, filters
        )

    def paper(self, paper_id: str) -> Paper | None:
        """One indexed paper (title, abstract, metadata) by id; None if it is not in the index."""
        return self.retriever.paper(paper_id)

    def evidence(
        self,
        question: str,
        query: str | None = None,
        k: int | None = None,
        mode: Mode | str | None = None,
        filters: Filters | None = None,
    ) -> Evidence:
        """Retrieval and the sentence evidence the three-outcome decision reads (``query``: the standalone query
        searched, default the question); independent of the decision's thresholds."""
        query = query or question
        found = self.retriever.search(query, _k(k, self.settings), mode or self.settings.retrieval.mode, filters)
        hits = found.hits
        abstracts = self.retriever.abstracts(hits)
        sources = tuple(
            Source(i, h.paper_id, h.title, abstracts.get(h.paper_id, h.best_chunk), h.score, h.best_chunk, h.metadata)
            for i, h in enumerate(hits, start=1)
        )
        top = max((h.dense_score for h in hits if h.dense_score is not None), default=None)
        background = self.topicality.background(self.retriever.query_vector(query)) if top is not None else None
        spec = replace(analyse(question), text=query)
        papers = tuple(gather(spec, sources))
        rest_margin = None
        rest = rest_to_judge(query, papers)
        if rest is not None and top is not None:
            # The question without its names, judged like the question (rag.answerability: a name alone does not
            # make "What colour is BERT's sweater?" technical): one more query embedding and a one-hit dense search.
            vec = self.retriever.query_vector(rest)
            nearest = self.retriever.dense(rest, 1, filters.where() if filters else None, vector=vec)
            if nearest:
                rest_margin = nearest[0].score - self.topicality.background(vec)
        return Evidence(
            spec, sources, papers, top, background, found.notes, found.rerank_ms, found.rewrite_ms, rest_margin
        )

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Answer:
        """Answer ``question``; per-call overrides: ``k``, ``mode``, ``filters``, ``history``, ``llm`` (another
        llama-index LLM), ``extractive=True`` (no LLM even if one is configured)."""
        answer: Answer | None = None
        for event in self.stream(question, **options):
            if isinstance(event, Answer):
                answer = event
        assert answer is not None  # stream always ends with the Answer
        return answer

    def stream(
        self,
        question: str,
        *,
        k: int | None = None,
        mode: Mode | str | None = None,
        filters: Filters | None = None,
        history: Sequence[Turn] = (),
        llm: ChatModel | None = None,
        extractive: bool = False,
    ) -> Iterator[str | Answer]:
        """Text deltas (with an LLM), then the final, checked Answer."""
        t0 = time.perf_counter()
        q = _validate(question)
        llm = None if extractive else (llm if llm is not None else self.llm)
        query = self._standalone(q, history, llm)
        evidence = self.evidence(q, query, k, mode, filters)
        sources = list(evidence.sources)
        t_retrieve = (time.perf_counter() - t0) * 1000
        decision = decide_on(evidence, self.thresholds)
        base = Answer(
            question=q,
            query=query,
            text="",
            citations=[],
            sources=sources,
            outcome="answered",
            mode="llm" if llm is not None else "extractive",
            mode_note=self.mode_note if llm is self.llm else self._describe(llm),
        )
        notes = list(evidence.notes)  # a rewrite or rerank stage that fell back
        if decision.outcome == "refused":
            yield replace(self._refusal(base, decision.reason, t0, t_retrieve), flags=notes)
            return
        timings = {"retrieve": t_retrieve}
        for stage, ms in (("rewrite", evidence.rewrite_ms), ("rerank", evidence.rerank_ms)):
            if ms is not None:
                timings[stage] = ms
        if llm is None:
            checked = check_answer(extractive_answer(decision), sources)
            outcome: Outcome = decision.outcome
            missing, flags = decision.missing, notes + self._flags(checked)
        else:
            text = yield from self._generate(llm, q, sources, history, t0, timings)
            if NOT_COVERED.rstrip(".").lower() in text.lower():
                # The model followed the prompt's rule for "the sources do not answer": a refusal, not an answer.
                refused = self._refusal(base, "the LLM found no answer in the retrieved abstracts", t0, t_retrieve)
                yield replace(refused, flags=notes)
                return
            said_missing, text = parse_partial(text)
            checked = check_answer(text, sources)
            flags = notes + self._flags(checked)
            verdict = _llm_outcome(checked, decision, said_missing)
            if verdict is None:
                flags.append("the LLM answer cites no abstract that supports it")
                refused = self._refusal(
                    base, "the LLM's answer is not supported by the retrieved abstracts", t0, t_retrieve
                )
                yield replace(refused, flags=flags)
                return
            outcome, missing = verdict
        yield replace(
            base,
            text=checked.text,
            citations=checked.citations,
            sentences=checked.sentences,
            outcome=outcome,
            missing=missing,
            flags=flags,
            timings_ms={**timings, "total": (time.perf_counter() - t0) * 1000},
        )

    @staticmethod
    def _flags(checked: CheckedAnswer) -> list[str]:
        flags = [f"removed citation [{n}]: not one of the sources" for n in checked.removed]
        return flags + [f"citation [{n}] is not supported by its abstract" for n in checked.unsupported]

    async def aask(self, question: str, **kwargs: Any) -> Answer:
        """``ask`` for async callers (runs in a worker thread: Chroma and the local model are synchronous)."""
        return await asyncio.to_thread(self.ask, question, **kwargs)

    def _describe(self, llm: ChatModel | None) -> str:
        if llm is None:
            return EXTRACTIVE_NOTE
        return f"LLM: {getattr(llm, 'model', type(llm).__name__)} (per-call override)"

    def _standalone(self, question: str, history: Sequence[Turn], llm: ChatModel | None) -> str:
        """Follow-ups become standalone queries: by the LLM when there is one, else deterministically."""
        if not history or llm is None:
            return standalone_query(question, history)
        from rag.llms import LLMError, complete_chat
        from rag.prompts import build_rewrite_messages

        past = [(t.question, t.answer.text) for t in history[-3:]]
        try:
            lines = complete_chat(llm, build_rewrite_messages(past, question)).strip().splitlines()
        except LLMError:
            return standalone_query(question, history)  # the answer call will report the LLM problem
        rewritten = lines[0].strip().strip('"') if lines else ""
        return rewritten if 3 <= len(rewritten) <= 500 else standalone_query(question, history)

    def _generate(
        self,
        llm: ChatModel,
        question: str,
        sources: list[Source],
        history: Sequence[Turn],
        t0: float,
        timings: dict[str, float],
    ) -> Generator[str, None, str]:
        from rag.llms import stream_chat
        from rag.prompts import build_messages

        past = [(t.question, t.answer.text) for t in history[-3:]]
        messages = build_messages(question, sources, self.settings.llm.context_tokens, past)
        timings["before_llm"] = (time.perf_counter() - t0) * 1000  # retrieval + checks + prompt building
        parts: list[str] = []
        for delta in stream_chat(llm, messages):
            if not parts:
                timings["first_token"] = (time.perf_counter() - t0) * 1000
            parts.append(delta)
            yield delta
        return "".join(parts)

    def _refusal(self, base: Answer, reason: str, t0: float, t_retrieve: float) -> Answer:
        nearest = "; ".join(neutralize(s.title) for s in base.sources[:3])
        text = f"The indexed abstracts don't answer this ({reason})."
        if nearest:
            text += f" Nearest papers: {nearest}."
        return replace(
            base,
            text=text,
            outcome="refused",
            refusal_reason=reason,
            timings_ms={"retrieve": t_retrieve, "total": (time.perf_counter() - t0) * 1000},
        )

    def conversation(self) -> Conversation:
        return Conversation(self)


def _llm_outcome(checked: CheckedAnswer, decision: Decision, said_missing: str) -> tuple[Outcome, str] | None:
    """The outcome of an LLM answer, with the code's evidence check overruling the model: no supported citation
    -> None (not presented as an answer); some statements unsupported, the model saying a detail is missing, or
    the code finding the detail absent -> partial; else answered."""
    if not any(c.supported for c in checked.citations):
        return None
    if said_missing:
        return "partial", said_missing
    if decision.outcome == "partial":
        return "partial", decision.missing
    if checked.unsupported or any(s.cited and not s.supported for s in checked.sentences):
        return "partial", "support in the cited abstracts for some of its statements"
    return "answered", ""


@dataclass
class Conversation:
    """Multi-turn chat: follow-ups are rewritten into standalone queries from the previous turns."""

    assistant: Assistant
    turns: list[Turn] = field(default_factory=list)

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Answer:
        options["history"] = self.turns
        answer = self.assistant.ask(question, **options)
        self.turns.append(Turn(answer.question, answer))  # the normalised question
        return answer
