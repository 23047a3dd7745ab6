"""The contract's error shape for HTTP: one exception type and the handlers that render it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat_contracts import HTTP_STATUS, ErrorCode, error_body

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer the client gets as `{"error": {...}}` with the code's HTTP status."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found.")


def rate_limited(retry_after: float) -> ApiError:
    seconds = max(1, int(retry_after + 0.999))
    return ApiError(
        ErrorCode.RATE_LIMITED,
        "Too many requests; try again later.",
        {"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def validation_details(errors: list[Any]) -> dict[str, Any]:
    """Pydantic errors without the offending input, which may be a password or be huge."""
    fields = []
    for err in errors[:20]:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(loc), "problem": err.get("msg", "invalid")})
    return {"fields": fields}


_STATUS_CODES = {
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_ERROR,
}


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, including framework ones, take the contract's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        body = error_body(
            ErrorCode.VALIDATION_ERROR,
            "The request is not valid.",
            validation_details(list(exc.errors())),
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's bare 400 is a body it could not decode (invalid UTF-8, broken
            # multipart): bad input like any other, so the contract's 422 validation_error.
            body = error_body(ErrorCode.VALIDATION_ERROR, "The request body could not be parsed.")
            return JSONResponse(body, status_code=422)
        code = _STATUS_CODES.get(exc.status_code, ErrorCode.INTERNAL)
        message = exc.detail if isinstance(exc.detail, str) else code.value
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(error_body(ErrorCode.INTERNAL, "Internal error."), status_code=500)
