"""The OpenAI chat-completions wire format, mapped onto the Assistant: a request becomes a question, its earlier
turns and per-request overrides; an Answer becomes a ``ChatCompletion`` (or its stream of chunks) whose content is
the answer with its [n] markers and references, and whose extra ``answer`` field carries the structured Answer.

Pure: no HTTP here (app.http_api serves it). The response objects are the ``openai`` SDK's own pydantic types, so
what we send is what that client parses.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel, ConfigDict, Field

from rag.answer import Answer
from rag.assistant import AskOptions, Turn
from rag.retrieve import Filters
from rag.types import Mode

__all__ = [
    "ChatRequest",
    "FiltersIn",
    "RequestError",
    "SearchRequest",
    "ask_options",
    "completion",
    "completion_chunks",
    "question_and_history",
    "reply_content",
]


class RequestError(ValueError):
    """The request is well-formed JSON but cannot be answered as sent (a 400 for the client)."""


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    year_min: int | None = None
    year_max: int | None = None
    categories: list[str] = Field(default_factory=list)

    def filters(self) -> Filters | None:
        if self.year_min is None and self.year_max is None and not self.categories:
            return None
        return Filters(self.year_min, self.year_max, tuple(self.categories))


class _Overrides(BaseModel):
    """Per-request overrides, sent as extra body fields (the openai client's ``extra_body``)."""

    k: int | None = Field(None, ge=1, le=50)
    mode: Mode | None = None
    filters: FiltersIn | None = None
    extractive: bool = False


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted and ignored

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; content parts of other types (images, audio) are not something abstracts answer."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content or [] if p.get("type") == "text")


class ChatRequest(_Overrides):
    # OpenAI clients send temperature, max_tokens, n, ... : accepted and ignored, the answer is grounded either way.
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessageIn] = Field(min_length=1)
    stream: bool = False


class SearchRequest(_Overrides):
    model_config = ConfigDict(extra="forbid")

    query: str


def question_and_history(messages: list[ChatMessageIn]) -> tuple[str, list[Turn]]:
    """The last user message is the question; each earlier user message with the assistant reply after it is a
    turn of the conversation. System messages are not instructions for us: the answer rules are the assistant's."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users or users[-1] != max(i for i, m in enumerate(messages) if m.role in ("user", "assistant")):
        raise RequestError("the last user or assistant message must be the user's question")
    question = messages[users[-1]].text()
    turns: list[Turn] = []
    for i in users[:-1]:
        reply = next((m.text() for m in messages[i + 1 : users[-1]] if m.role == "assistant"), "")
        asked = messages[i].text()
        # Only the text of earlier answers comes back over this API: the previous question stands in for the
        # query those answers searched, which is what a follow-up ("which tasks did they use?") leans on.
        turns.append(Turn(asked, Answer(asked, asked, reply, [], [], "answered", "extractive", "")))
    return question, turns


def ask_options(request: _Overrides, history: list[Turn] | None = None) -> AskOptions:
    options: AskOptions = {"k": request.k, "mode": request.mode, "extractive": request.extractive}
    if request.filters is not None:
        options["filters"] = request.filters.filters()
    if history:
        options["history"] = history
    return options


def reply_content(answer: Answer) -> str:
    """What a chat client shows: the answer with its [n] markers, then the numbered references."""
    return answer.to_markdown(question=False)


def _ids() -> tuple[str, int]:
    return f"chatcmpl-{uuid.uuid4().hex}", int(time.time())


def completion(answer: Answer, model: str) -> ChatCompletion:
    cid, created = _ids()
    message = ChatCompletionMessage(role="assistant", content=reply_content(answer))
    return ChatCompletion(
        id=cid,
        object="chat.completion",
        created=created,
        model=model,
        choices=[Choice(index=0, finish_reason="stop", message=message)],
        answer=answer.to_dict(sentences=False),  # type: ignore[call-arg]  # the SDK's models keep extra fields
    )


def completion_chunks(get_answer: Callable[[], Answer], model: str) -> Iterator[ChatCompletionChunk]:
    """The stream of one answer: the role at once, then, once ``get_answer`` returns the checked Answer, its
    content and a last chunk with ``finish_reason`` and the ``answer`` field.

    The content is sent only once it is checked: an LLM's raw deltas can cite a paper that the check then removes,
    or turn into a refusal, and a chat client cannot take back text it has shown."""
    cid, created = _ids()

    def chunk(delta: ChoiceDelta, finish: Literal["stop"] | None = None, **extra: Any) -> ChatCompletionChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish)
        return ChatCompletionChunk(
            id=cid, object="chat.completion.chunk", created=created, model=model, choices=[choice], **extra
        )

    yield chunk(ChoiceDelta(role="assistant", content=""))
    answer = get_answer()
    yield chunk(ChoiceDelta(content=reply_content(answer)))
    yield chunk(ChoiceDelta(), "stop", answer=answer.to_dict(sentences=False))
