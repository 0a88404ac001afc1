"""Support judges for the ALCE-style citation scores: does this evidence back this claim?

- :class:`LexicalJudge` (the default, offline): ``rag.citations.support(claim, evidence) >= threshold``. A lexical
  proxy, not entailment; the threshold is calibrated on the dev split by ``python -m evals.calibrate``.
- :class:`LLMJudge`: asks the configured LLM (any OpenAI-compatible endpoint, through ``rag.llms``) a yes/no
  entailment question. Used only with ``--judge llm`` and an LLM configured.

>>> judge = LexicalJudge(0.4)
>>> judge.name, judge.supports("SimCSE uses dropout as noise.", ["SimCSE ... with only dropout used as noise."])
('lexical-support@0.4', True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.citations import support

if TYPE_CHECKING:
    from rag.settings import LLMSettings

__all__ = [
    "DEFAULT_THRESHOLD",
    "JUDGES",
    "Judge",
    "JudgeError",
    "LLMJudge",
    "LexicalJudge",
    "build_judge",
    "parse_verdict",
]

DEFAULT_THRESHOLD = 0.4  # calibrated on the dev split (docs/evals.md, "Judge calibration")
JUDGES: tuple[str, ...] = ("lexical", "llm")


class JudgeError(RuntimeError):
    """The judge cannot be used as asked (no LLM configured, a reply that is not yes/no in strict mode)."""


@runtime_checkable
class Judge(Protocol):
    """Decides whether ``evidence`` (one or more abstracts, read together) supports ``claim`` (one statement)."""

    @property
    def name(self) -> str: ...

    def supports(self, claim: str, evidence: Sequence[str]) -> bool: ...


@dataclass(frozen=True)
class LexicalJudge:
    """The offline judge: the project's lexical support score of the claim against the joined evidence."""

    threshold: float = DEFAULT_THRESHOLD

    @property
    def name(self) -> str:
        return f"lexical-support@{self.threshold:g}"

    def score(self, claim: str, evidence: Sequence[str]) -> float:
        return support(claim, "\n".join(evidence))[0] if evidence else 0.0

    def supports(self, claim: str, evidence: Sequence[str]) -> bool:
        return bool(evidence) and self.score(claim, evidence) >= self.threshold


_SYSTEM = (
    "You check citations. Given evidence passages and a claim, decide whether the evidence alone fully supports "
    "the claim. Reply with one word: yes or no."
)
_VERDICT = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_EVIDENCE_CHARS = 2_500  # per passage: an abstract fits, a pasted full text does not blow the context


def parse_verdict(reply: str) -> bool | None:
    """``True`` for a reply starting with "yes", ``False`` for "no" (case, markdown and punctuation around the
    word tolerated: "**Yes.**", "no, because ..."); ``None`` for anything else."""
    m = _VERDICT.match(reply.strip())
    return None if m is None else m.group(1).lower() == "yes"


def judge_messages(claim: str, evidence: Sequence[str]) -> list[Any]:
    from llama_index.core.llms import ChatMessage, MessageRole

    passages = "\n\n".join(f"[{i}] {e[:_EVIDENCE_CHARS]}" for i, e in enumerate(evidence, start=1))
    user = f"Evidence:\n{passages}\n\nClaim: {claim}\n\nDoes the evidence fully support the claim? Answer yes or no."
    return [ChatMessage(role=MessageRole.SYSTEM, content=_SYSTEM), ChatMessage(role=MessageRole.USER, content=user)]


@dataclass
class LLMJudge:
    """Entailment by an LLM: one short chat call per (claim, evidence) pair, cached (the ALCE precision check
    asks the same pair more than once). Transport failures raise ``rag.llms.LLMError``; a reply that is neither
    yes nor no counts as "not supported" and is counted in ``stats["malformed"]`` (``strict=True``: JudgeError).
    """

    llm: Any
    model: str = "llm"
    strict: bool = False
    stats: dict[str, int] = field(default_factory=lambda: {"calls": 0, "yes": 0, "no": 0, "malformed": 0})
    _cache: dict[tuple[str, tuple[str, ...]], bool] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, cfg: LLMSettings, strict: bool = False) -> LLMJudge:
        """The configured LLM with a short reply budget and temperature 0. JudgeError when none is configured."""
        from rag.llms import build_llm

        if cfg.provider == "none":
            raise JudgeError(
                "--judge llm needs an LLM: set RAG_LLM__PROVIDER (openai or openai-compatible) and, for a local "
                "server, RAG_LLM__BASE_URL (e.g. http://127.0.0.1:8080/v1); see README 'Configuration'"
            )
        llm = build_llm(cfg.model_copy(update={"max_tokens": 8, "temperature": 0.0}))
        assert llm is not None
        return cls(llm, cfg.model, strict)

    @property
    def name(self) -> str:
        return f"llm-entailment:{self.model}"

    def supports(self, claim: str, evidence: Sequence[str]) -> bool:
        if not evidence or not claim.strip():
            return False
        key = (claim, tuple(evidence))
        if key in self._cache:
            return self._cache[key]
        from rag.llms import complete_chat

        reply = complete_chat(self.llm, judge_messages(claim, evidence))
        self.stats["calls"] += 1
        verdict = parse_verdict(reply)
        if verdict is None:
            self.stats["malformed"] += 1
            if self.strict:
                raise JudgeError(f"the judge LLM replied {reply.strip()[:80]!r}, not yes or no")
        else:
            self.stats["yes" if verdict else "no"] += 1
        self._cache[key] = bool(verdict)
        return bool(verdict)


def build_judge(kind: str, llm_settings: LLMSettings | None = None, threshold: float = DEFAULT_THRESHOLD) -> Judge:
    """``kind``: "lexical" (offline, ``threshold``) or "llm" (needs ``llm_settings`` with a provider)."""
    if kind == "lexical":
        return LexicalJudge(threshold)
    if kind == "llm":
        if llm_settings is None:
            raise JudgeError("--judge llm needs the LLM settings")
        return LLMJudge.from_settings(llm_settings)
    raise JudgeError(f"unknown judge {kind!r}; choose one of {', '.join(JUDGES)}")
