"""Errors as JSON, one shape for every route (the OpenAI API's, so its clients show the
message): ``{"error": {"message": ..., "type": ..., "code": ...}}`` with the right status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.document import DocumentError
from knowledge.access.api_keys import InvalidApiKeyError
from knowledge.access.ratelimit import RateLimitedError
from knowledge.core.errors import (
    KdeskError,
    ModelUnavailableError,
    NotFoundError,
    PermissionDeniedError,
)

log = logging.getLogger("kdesk.service")

# exception class -> (status, type); the first match in order wins
STATUSES: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidApiKeyError, 401, "authentication_error"),
    (PermissionDeniedError, 403, "permission_error"),
    (NotFoundError, 404, "not_found_error"),
    (RateLimitedError, 429, "rate_limit_error"),
    (ModelUnavailableError, 503, "model_unavailable"),
    (DocumentError, 422, "invalid_document"),
    (KdeskError, 400, "invalid_request_error"),
)
HTTP_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error"}


class ApiError(KdeskError):
    """An error of the API itself (a missing scope, a bad field) with its status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        code: str | None = None,  # OpenAI's own codes ("model_not_found"); else the status
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code


def error_body(message: str, kind: str, code: int | str | None = None) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "code": code}}


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int | str | None = None


class ErrorBody(BaseModel):
    """Every error, in OpenAI's shape (``error_body``)."""

    error: ErrorDetail


def documented(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, object]]:
    """A route's OpenAPI ``responses`` for these error statuses (each optionally with why),
    each with the error body."""
    responses: dict[int | str, dict[str, object]] = {}
    for status in statuses:
        code, why = status if isinstance(status, tuple) else (status, None)
        responses[code] = {"model": ErrorBody} | ({"description": why} if why else {})
    return dict(sorted(responses.items(), key=lambda item: int(item[0])))


def error_response(exc: Exception) -> JSONResponse:
    """The JSON response for an exception the desk raised on purpose (others are 500)."""
    if isinstance(exc, ApiError):
        body = error_body(str(exc), exc.kind, exc.code or exc.status)
        return JSONResponse(body, exc.status)
    for cls, status, kind in STATUSES:
        if isinstance(exc, cls):
            headers: dict[str, str] = {}
            if isinstance(exc, RateLimitedError):
                headers["Retry-After"] = str(max(1, int(exc.retry_after_s)))
            if isinstance(exc, InvalidApiKeyError):
                headers["WWW-Authenticate"] = "Bearer"
            return JSONResponse(error_body(str(exc), kind, status), status, headers=headers)
    log.exception("unexpected error in a request", exc_info=exc)
    return JSONResponse(error_body("Something went wrong on the server.", "server_error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    async def desk_error(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'request'}: "
            f"{e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        message = "; ".join(problems) or "The request is not valid."
        return JSONResponse(error_body(message, "invalid_request_error", 422), 422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = HTTP_TYPES.get(exc.status_code, "invalid_request_error")
        body = error_body(str(exc.detail), kind, exc.status_code)
        return JSONResponse(body, exc.status_code, headers=exc.headers)

    app.add_exception_handler(KdeskError, desk_error)
    app.add_exception_handler(DocumentError, desk_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, desk_error)
