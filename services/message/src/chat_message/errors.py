"""The errors the message service's use cases raise, in the contract's vocabulary."""

from __future__ import annotations

from chat_contracts import ErrorCode
from chat_platform.errors import ApiError, not_found


def invalid(message: str, field: str | None = None) -> ApiError:
    details = {"fields": [{"field": field, "problem": message}]} if field else None
    return ApiError(ErrorCode.VALIDATION_ERROR, message, details)


def no_conversation() -> ApiError:
    # The same answer for "does not exist" and "not yours": a non-member learns nothing.
    return not_found("Conversation")


def no_message() -> ApiError:
    return not_found("Message")


def forbidden(message: str) -> ApiError:
    return ApiError(ErrorCode.FORBIDDEN, message)


def conflict(message: str) -> ApiError:
    return ApiError(ErrorCode.CONFLICT, message)
