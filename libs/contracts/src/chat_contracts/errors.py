"""Stable error codes of the public API, the body they travel in, and the one error type.

`ApiError` is raised wherever a request can fail and renders itself for every
way an answer travels: an HTTP response (`status`, `headers`, `body()`), a
command reply (`detail()`) and a Socket.IO acknowledgement (`ack()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from chat_contracts._base import ClosedModel


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    INVALID_CREDENTIALS = "invalid_credentials"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    USERNAME_TAKEN = "username_taken"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.USERNAME_TAKEN: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INTERNAL: 500,
}


class ErrorDetail(ClosedModel):
    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(ClosedModel):
    """`{"error": {"code", "message", "details"?}}`: every error, HTTP or socket ack."""

    error: ErrorDetail


def error_body(
    code: ErrorCode, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON-ready error body; `details` is left out when there are none."""
    body: dict[str, Any] = {"code": code.value, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


class ApiError(Exception):
    """An answer in the contract's error shape, whichever way it travels."""

    def __init__(
        self, code: ErrorCode | str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"ApiError({self.code.value!r}, {self.message!r})"

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    @property
    def headers(self) -> dict[str, str] | None:
        """`Retry-After` whenever the details advise a wait (rate limits, overload)."""
        retry_after = (self.details or {}).get("retry_after")
        return {"Retry-After": str(retry_after)} if retry_after is not None else None

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)

    def ack(self) -> dict[str, Any]:
        """The Socket.IO acknowledgement: `{"ok": false, "error": {...}}`."""
        return {"ok": False, **self.body()}

    def detail(self) -> ErrorDetail:
        return ErrorDetail(code=self.code, message=self.message, details=self.details)

    @classmethod
    def from_detail(cls, detail: ErrorDetail) -> ApiError:
        return cls(detail.code, detail.message, detail.details)


def invalid(message: str, field: str | None = None) -> ApiError:
    details = {"fields": [{"field": field, "problem": message}]} if field else None
    return ApiError(ErrorCode.VALIDATION_ERROR, message, details)


def invalid_payload(errors: Sequence[Any], message: str = "The request is not valid.") -> ApiError:
    """A pydantic validation failure, as `validation_error` naming each field."""
    return ApiError(ErrorCode.VALIDATION_ERROR, message, validation_details(errors))


def validation_details(errors: Sequence[Any]) -> dict[str, Any]:
    """Pydantic errors without the offending input, which may be a password or be huge."""
    fields = []
    for err in list(errors)[:20]:
        loc = [str(part) for part in err.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(loc), "problem": err.get("msg", "invalid")})
    return {"fields": fields}


def not_found(what: str) -> ApiError:
    return ApiError(ErrorCode.NOT_FOUND, f"{what} not found.")


def forbidden(message: str) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message)


def conflict(message: str) -> ApiError:
    return ApiError(ErrorCode.CONFLICT, message)


def _whole_seconds(seconds: float) -> int:
    return max(1, int(seconds + 0.999))


def rate_limited(
    retry_after: float, message: str = "Too many requests; try again later."
) -> ApiError:
    return ApiError(ErrorCode.RATE_LIMITED, message, {"retry_after": _whole_seconds(retry_after)})


def unavailable(message: str, retry_after: float | None = None) -> ApiError:
    """Nothing was done; safe to retry (after `retry_after` seconds, when given)."""
    details = None if retry_after is None else {"retry_after": _whole_seconds(retry_after)}
    return ApiError(ErrorCode.UNAVAILABLE, message, details)


def timed_out(message: str = "No answer in time; the outcome is unknown.") -> ApiError:
    """The request may or may not have been carried out: retry it as it was (idempotently)."""
    return ApiError(ErrorCode.TIMEOUT, message)
