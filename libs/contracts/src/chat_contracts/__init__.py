"""Contracts of the chat backend: events, commands, resources, errors. Pure data, no I/O."""

from chat_contracts.errors import (
    HTTP_STATUS,
    ApiError,
    ErrorBody,
    ErrorCode,
    ErrorDetail,
    error_body,
)
from chat_contracts.events import (
    EVENT_TYPES,
    EXCHANGE,
    ConversationUpdated,
    Envelope,
    Event,
    MessageCreated,
    MessageDeleted,
    MessageEvent,
    MessageUpdated,
    PresenceChanged,
    ReceiptUpdated,
    UnknownEventError,
    UserRegistered,
)
from chat_contracts.models import Attachment, Conversation, ConversationType, Message, User

__all__ = [
    "EVENT_TYPES",
    "EXCHANGE",
    "HTTP_STATUS",
    "ApiError",
    "Attachment",
    "Conversation",
    "ConversationType",
    "ConversationUpdated",
    "Envelope",
    "ErrorBody",
    "ErrorCode",
    "ErrorDetail",
    "Event",
    "Message",
    "MessageCreated",
    "MessageDeleted",
    "MessageEvent",
    "MessageUpdated",
    "PresenceChanged",
    "ReceiptUpdated",
    "UnknownEventError",
    "User",
    "UserRegistered",
    "error_body",
]
