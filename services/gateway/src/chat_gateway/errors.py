"""Errors answered in Socket.IO acknowledgements, in the contract's shape."""

from __future__ import annotations

from typing import Any

from chat_contracts import ErrorCode, error_body


class EventError(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def ack(self) -> dict[str, Any]:
        return {"ok": False, **error_body(self.code, self.message, self.details)}
