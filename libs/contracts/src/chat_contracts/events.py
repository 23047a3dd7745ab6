"""Every event exchanged over RabbitMQ, and the envelope that carries it.

Routing keys are the event's `type`; a change of meaning is a new `version`,
never a silent edit (the schema snapshot test makes every change visible).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from chat_contracts._base import ClosedModel
from chat_contracts.models import Conversation, Message, User, UserSettings

EXCHANGE = "chat.events"


class Event(ClosedModel):
    """The `data` of an envelope. Subclasses name their routing key and version."""

    type: ClassVar[str]
    version: ClassVar[int] = 1


class UserRegistered(Event):
    type = "user.registered"
    user: User


class UserBlocked(Event):
    """`blocker_id` blocked `blocked_id`: every service applies it within seconds (§7.5)."""

    type = "user.blocked"
    blocker_id: str
    blocked_id: str


class UserUnblocked(Event):
    type = "user.unblocked"
    blocker_id: str
    blocked_id: str


class UserSettingsChanged(Event):
    """A user's settings, whole: a consumer keeps the latest copy."""

    type = "user.settings_changed"
    user_id: str
    settings: UserSettings


class ConversationUpdated(Event):
    """A conversation was created or its members changed.

    `conversation` carries no per-user fields; `removed_member_ids` lets the
    gateways tell users who left that they are out.
    """

    type = "conversation.updated"
    conversation: Conversation
    removed_member_ids: list[str] = Field(default_factory=list)


class MessageEvent(Event):
    """A message as it is now, for the members who should see it."""

    message: Message
    member_ids: list[str]


class MessageCreated(MessageEvent):
    type = "message.created"


class MessageUpdated(MessageEvent):
    type = "message.updated"


class MessageDeleted(MessageEvent):
    type = "message.deleted"


class ReceiptUpdated(Event):
    type = "receipt.updated"
    conversation_id: str
    user_id: str
    kind: Literal["delivered", "read"]
    seq: int
    member_ids: list[str]


class PresenceChanged(Event):
    type = "presence.changed"
    user_id: str
    online: bool
    last_seen: datetime | None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        UserRegistered,
        UserBlocked,
        UserUnblocked,
        UserSettingsChanged,
        ConversationUpdated,
        MessageCreated,
        MessageUpdated,
        MessageDeleted,
        ReceiptUpdated,
        PresenceChanged,
    )
}


class Envelope(ClosedModel):
    """`{id, type, version, occurred_at, producer, data}`; `id` lets consumers drop duplicates."""

    id: str
    type: str
    version: int
    occurred_at: datetime
    producer: str
    data: dict[str, Any]

    @classmethod
    def wrap(cls, event: Event, producer: str, *, event_id: str | None = None) -> Envelope:
        return cls(
            id=event_id or uuid.uuid4().hex,
            type=event.type,
            version=event.version,
            occurred_at=datetime.now(UTC),
            producer=producer,
            data=event.model_dump(mode="json"),
        )

    def unwrap(self) -> Event:
        """The typed event; raises `UnknownEventError` or a pydantic ValidationError."""
        cls = EVENT_TYPES.get(self.type)
        if cls is None or cls.version != self.version:
            raise UnknownEventError(f"{self.type} v{self.version}")
        return cls.model_validate(self.data)


class UnknownEventError(ValueError):
    """An envelope whose type or version this code does not know."""
