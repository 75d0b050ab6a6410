"""Every error the service answers is JSON ``{"error": {"code": ..., "message": ...}}``, never a trace.

Example:
    >>> error_body("not_found", "no item 'x'")
    {'error': {'code': 'not_found', 'message': "no item 'x'"}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from shoplm.errors import ConflictError, InputError, ModelFileError, NotFoundError, ShoplmError

log = logging.getLogger("shoplm.serve")

#: The ``code`` of an error answer by HTTP status (when the raiser gave none).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[str] | None = None


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorDetail


class ApiError(HTTPException):
    """An HTTP error with a machine-readable ``code`` (raise it from routes and dependencies).

    Example:
        >>> ApiError(404, "no item 'x'", code="item_not_found").status_code
        404
    """

    def __init__(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(status_code=status, detail=message, headers=headers)
        self.code = code or STATUS_CODES.get(status, "error")


class BodyTooLarge(ApiError):
    """Raised while a request body is read once it passes the size limit (a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit:,} bytes", code="payload_too_large")


def error_body(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """The JSON error document."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if fields:
        detail["fields"] = fields
    return {"error": detail}


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


#: Documented on every API route (pydantic model of the error body in the OpenAPI spec).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": STATUS_CODES[status].replace("_", " ")}
    for status in (401, 403, 413, 422, 429, 503)
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    """``('body', 'events', 0, 'user_id')`` -> ``events[0].user_id`` (the name a client knows)."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        where, parts = parts[0], parts[1:]
    else:
        where = ""
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    if where == "body" and not name:
        return "body"
    return name or where


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    fields = []
    for error in exc.errors():
        field = _field_name(error.get("loc", ()))
        fields.append(field)
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            message = f"malformed JSON at character {error['loc'][-1]}: {reason}".rstrip(": ")
            field = "body"
            fields[-1] = field
        problems.append(f"{field}: {message}")
    text = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
    return JSONResponse(error_body("invalid_request", text, fields[:50]), status_code=422)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and not isinstance(exc, ApiError):
        # FastAPI's answer to a body it cannot decode (not UTF-8, say): a bad request body like any
        # other, so the same documented 422 as a body that fails validation.
        return JSONResponse(error_body("invalid_request", f"body: {exc.detail}", ["body"]), status_code=422)
    code = getattr(exc, "code", None) or STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
    # Bad request content the engine spotted (unknown scene, a scene without its item, ...).
    return JSONResponse(
        error_body("invalid_request", str(exc), [exc.field] if exc.field else None),
        status_code=422,
    )


async def _not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
    return error_response(404, exc.code, str(exc))


async def _conflict(_request: Request, exc: ConflictError) -> JSONResponse:
    return error_response(409, exc.code, str(exc))


async def _model_error(_request: Request, exc: ModelFileError) -> JSONResponse:
    return error_response(503, "models_unavailable", str(exc))


async def _shoplm_error(_request: Request, exc: ShoplmError) -> JSONResponse:
    log.warning("request failed: %s", exc)
    return error_response(500, "internal", str(exc))


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the server log only; the client learns that it failed, not how.
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on ``app``."""
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(InputError, _input_error)  # type: ignore[arg-type]
    app.add_exception_handler(NotFoundError, _not_found)  # type: ignore[arg-type]
    app.add_exception_handler(ConflictError, _conflict)  # type: ignore[arg-type]
    app.add_exception_handler(ModelFileError, _model_error)  # type: ignore[arg-type]
    app.add_exception_handler(ShoplmError, _shoplm_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
