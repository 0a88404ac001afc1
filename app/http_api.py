"""`rag serve`: an HTTP API over the same Assistant. OpenAI-compatible chat completions (plain and streaming),
search, papers and a health check, with JSON errors in the OpenAI shape and never a traceback.

>>> api = build_api(Assistant.open(settings), settings.serve)
>>> uvicorn.run(api, host=settings.serve.host, port=settings.serve.port)
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from openai.types import Model
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.failures import SERVICE_DOWN
from app.openai_chat import (
    ChatRequest,
    RequestError,
    SearchRequest,
    ask_options,
    completion,
    completion_chunks,
    question_and_history,
)
from rag.assistant import MAX_QUESTION_CHARS, Assistant
from rag.settings import ServeSettings
from rag.store import StoreUnavailableError

__all__ = ["ApiError", "build_api"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error_body(message: str, kind: str, status: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": status}}


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(_error_body(message, kind, status), status_code=status)


def _classify(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, SERVICE_DOWN):
        return ApiError(503, str(exc), "service_unavailable")
    if isinstance(exc, ValueError):  # the Assistant's own checks: empty question, bad k or mode, ...
        return ApiError(400, str(exc), "invalid_request_error")
    log.exception("unexpected error while answering")
    return ApiError(500, "internal error (see the server's log)", "internal_error")


def _checked_question(question: str) -> str:
    if len(question) > MAX_QUESTION_CHARS:
        raise ApiError(
            413, f"question too long ({len(question):,} characters; limit {MAX_QUESTION_CHARS:,})", "request_too_large"
        )
    return question


def build_api(assistant: Assistant, cfg: ServeSettings) -> FastAPI:
    """The HTTP API over ``assistant``. With ``cfg.api_key`` set, every route but /healthz needs
    ``Authorization: Bearer <key>``; binding beyond loopback without a key is refused by ``app.serve``."""
    api = FastAPI(title="paper-rag", summary="Answers about ML paper abstracts, with checked citations.")
    key = cfg.api_key.get_secret_value() if cfg.api_key is not None else None
    bearer = HTTPBearer(auto_error=False)

    def authorized(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if key is None:
            return
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), key.encode()):
            raise ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>", "authentication_error")

    @api.middleware("http")
    async def limit_body(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cfg.max_body_bytes:
            return _error(413, f"request body over {cfg.max_body_bytes:,} bytes", "request_too_large")
        return await call_next(request)

    @api.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @api.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return _error(400, f"invalid request: {problems}", "invalid_request_error")

    @api.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error(exc.status_code, str(exc.detail), kind)

    @api.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        err = _classify(exc)
        return _error(err.status, err.message, err.kind)

    @api.get("/healthz")
    def healthz() -> dict[str, Any]:
        try:
            papers = assistant.retriever.store.paper_count()
        except StoreUnavailableError as exc:
            raise ApiError(503, str(exc), "service_unavailable") from exc
        return {"status": "ok", "papers": papers, "mode": assistant.mode_note}

    @api.get("/v1/models", dependencies=[Depends(authorized)])
    def models() -> dict[str, Any]:
        model = Model(id=cfg.model_name, object="model", created=0, owned_by="paper-rag")
        return {"object": "list", "data": [model.model_dump()]}

    @api.post("/v1/chat/completions", dependencies=[Depends(authorized)], response_model=None)
    def chat(request: ChatRequest) -> dict[str, Any] | StreamingResponse:
        try:
            question, history = question_and_history(request.messages)
        except RequestError as exc:
            raise ApiError(400, str(exc), "invalid_request_error") from exc
        options = ask_options(request, history)
        _checked_question(question)

        def answer() -> Any:
            try:
                return assistant.ask(question, **options)
            except Exception as exc:
                raise _classify(exc) from exc

        if not request.stream:
            return completion(answer(), cfg.model_name).model_dump(exclude_none=True)
        return StreamingResponse(_sse(completion_chunks(answer, cfg.model_name)), media_type="text/event-stream")

    @api.post("/v1/search", dependencies=[Depends(authorized)])
    def search(request: SearchRequest) -> dict[str, Any]:
        query = _checked_question(request.query)
        filters = request.filters.filters() if request.filters is not None else None
        try:
            hits = assistant.retrieve(query, k=request.k, mode=request.mode, filters=filters)
        except Exception as exc:
            raise _classify(exc) from exc
        results = [
            {
                "paper_id": h.paper_id,
                "title": h.title,
                "score": h.score,
                "best_chunk": h.best_chunk,
                "metadata": h.metadata,
            }
            for h in hits
        ]
        return {"query": query, "results": results}

    @api.get("/v1/papers/{paper_id:path}", dependencies=[Depends(authorized)], response_model=None)
    def paper(paper_id: str, format: str = "json") -> dict[str, Any] | PlainTextResponse:
        if format not in ("json", "bibtex"):
            raise ApiError(400, f"unknown format {format!r}: use json or bibtex", "invalid_request_error")
        try:
            found = assistant.paper(paper_id)
        except Exception as exc:
            raise _classify(exc) from exc
        if found is None:
            raise ApiError(404, f"no indexed paper has the id {paper_id!r}", "not_found_error")
        if format == "bibtex":
            from rag.export import paper_bibtex

            return PlainTextResponse(paper_bibtex(found), media_type="application/x-bibtex")
        return found.public_dict()

    return api


def _sse(chunks: Iterator[Any]) -> Iterator[str]:
    """Server-sent events as OpenAI sends them: ``data: <json>`` per chunk, then ``data: [DONE]``. A failure after
    the stream began (the status line is already sent) becomes an ``error`` event, which the openai client raises."""
    try:
        for chunk in chunks:
            yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
    except Exception as exc:
        err = _classify(exc)
        yield f"data: {json.dumps(_error_body(err.message, err.kind, err.status))}\n\n"
        return
    yield "data: [DONE]\n\n"
