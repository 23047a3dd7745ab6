"""The message service's own ways to say "not found", in the contract's vocabulary."""

from __future__ import annotations

from chat_contracts.errors import ApiError, not_found


def no_conversation() -> ApiError:
    # The same answer for "does not exist" and "not yours": a non-member learns nothing.
    return not_found("Conversation")


def no_message() -> ApiError:
    return not_found("Message")
