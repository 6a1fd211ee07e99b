"""The server's edges: the write token (checked before a write's body is read, compared in constant time) and
every error as JSON `{"error": "…"}` with a 4xx code, never a traceback."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tubelet.errors import TubeletError
from tubelet.serve.jobs import Busy
from tubelet.serve.service import NotFound
from tubelet.serve.uploads import UploadError

log = logging.getLogger("tubelet.serve")
TOKEN_HELP = "send it as 'Authorization: Bearer <token>'"


def token_problem(expected: str | None, authorization: str | None) -> tuple[int, str] | None:
    """(status, message) when a write may not go ahead; None when the token matches."""
    if expected is None:
        return 403, ("writes are disabled on this server: start it with --token (or TUBELET_TOKEN) to allow "
                     "adding and removing videos")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return 401, f"adding and removing videos needs the server's token: {TOKEN_HELP}"
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        return 401, "wrong token"
    return None


class Edge:
    """ASGI middleware: request bodies are capped at `max_body` bytes (by Content-Length up front, else as they
    stream in), and requests that `is_write` must carry the token, checked before their body is read."""

    def __init__(self, app: ASGIApp, token: str | None, max_body: int, is_write: Callable[[str, str], bool]) -> None:
        self.app, self.token, self.max_body, self.is_write = app, token, max_body, is_write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.is_write(scope["method"], scope["path"]):
            problem = token_problem(self.token, headers.get(b"authorization", b"").decode("latin-1") or None)
            if problem:
                await JSONResponse({"error": problem[1]}, problem[0],
                                   headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await JSONResponse({"error": too_large(self.max_body)}, 413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise HTTPException(413, too_large(self.max_body))
            return message

        await self.app(scope, counted, send)


def too_large(max_body: int) -> str:
    return f"request body larger than this server's limit of {max_body / 2**20:.1f} MiB"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("query", "path", "body", "header", "form")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI, scrub: Callable[[str], str]) -> None:
    """JSON errors everywhere; `scrub` takes server paths out of messages."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, 422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint (the API is listed at /docs)"
        elif exc.status_code == 405:
            message = "method not allowed on this endpoint (the API is listed at /docs)"
        return JSONResponse({"error": message}, exc.status_code, headers=exc.headers)

    @app.exception_handler(TubeletError)
    async def tubelet_error(_: Request, exc: TubeletError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 429 if isinstance(exc, Busy) else \
            exc.status if isinstance(exc, UploadError) else 400
        return JSONResponse({"error": scrub(str(exc))}, status)

    @app.exception_handler(Exception)
    async def bug(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse({"error": "internal error (see the server log)"}, 500)
