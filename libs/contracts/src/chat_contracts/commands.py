"""Commands the gateways send to the message service over RabbitMQ, and their replies.

A command is a request with a name (the AMQP message `type`) and a reply
model; both sides use these classes, so a command is spelled once. What a
client sent travels as the validated payload itself (`request`), never
re-spelled field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from chat_contracts._base import ClosedModel
from chat_contracts.errors import ErrorDetail
from chat_contracts.fields import Id, Seq
from chat_contracts.models import Conversation, Message
from chat_contracts.socket import SendMessagePayload, SyncPayload

CursorKind = Literal["delivered", "read"]


class Reply(ClosedModel):
    """The result of a command that succeeded."""


R = TypeVar("R", bound=Reply)


class Command(ClosedModel, Generic[R]):
    """A request to the message service, typed by its reply: `SendMessage(Command[MessageSent])`.

    `name` is what the command travels as; `reply` is taken from the type parameter,
    so that the reply is named once and callers get it typed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: ClassVar[str]
    reply: ClassVar[type[Reply]]
    # The queue it travels on, after the namespace: writes and catch-up reads never wait
    # on each other.
    queue: ClassVar[str] = "message.reads"

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        args = cls.__pydantic_generic_metadata__["args"]
        if args and isinstance(args[0], type) and issubclass(args[0], Reply):
            cls.reply = args[0]


class MessageSent(Reply):
    message: Message
    created: bool


class SendMessage(Command[MessageSent]):
    """Store a message (or find the one this `client_msg_id` already stored)."""

    name = "message.send"
    queue = "message.commands"
    sender_id: Id
    request: SendMessagePayload


class CursorMoved(Reply):
    moved: bool


class MoveCursor(Command[CursorMoved]):
    """Move a member's delivered or read cursor forward (never back)."""

    name = "cursor.move"
    queue = "message.commands"
    user_id: Id
    conversation_id: Id
    seq: Seq
    kind: CursorKind


class SyncedConversation(ClosedModel):
    conversation: Conversation
    messages: list[Message]
    # More messages follow (after the cursor), or precede (a conversation new to the device).
    has_more: bool
    # Messages the device holds changed in more ways than one answer carries: reload them.
    history_stale: bool = False


class SyncResult(Reply):
    conversations: list[SyncedConversation]
    removed_conversation_ids: list[str]
    synced_at: datetime
    # False: call again with the updated cursors and the same `since` (CONTRACT §7.1).
    complete: bool = True


class Sync(Command[SyncResult]):
    """What a device missed since its cursors (CONTRACT §5 `sync`)."""

    name = "sync"
    user_id: Id
    request: SyncPayload


class Members(Reply):
    member_ids: list[str]


class ConversationMembers(Command[Members]):
    """The members of a conversation, asked by one of them."""

    name = "conversation.members"
    user_id: Id
    conversation_id: Id


class Contacts(Reply):
    user_ids: list[str]


class UserContacts(Command[Contacts]):
    """The users who share a conversation with a user."""

    name = "user.contacts"
    user_id: Id


class PresenceAudience(Command[Contacts]):
    """Who may see `user_id`'s presence: as their settings and blocks allow (§7.2)."""

    name = "presence.audience"
    user_id: Id


class VisiblePresence(Command[Contacts]):
    """Of `user_ids`, those whose presence `viewer_id` may see."""

    name = "presence.visible"
    viewer_id: Id
    user_ids: Annotated[list[Id], Field(max_length=200)]


COMMANDS: dict[str, type[Command[Any]]] = {
    cls.name: cls
    for cls in (
        SendMessage,
        MoveCursor,
        Sync,
        ConversationMembers,
        UserContacts,
        PresenceAudience,
        VisiblePresence,
    )
}

T = TypeVar("T", bound=BaseModel)


class Answer(ClosedModel, Generic[T]):
    """What travels back to the caller: `{ok: true, result}` or `{ok: false, error}`."""

    ok: bool
    result: T | None = None
    error: ErrorDetail | None = None

    def to_json(self) -> bytes:
        """Only the side that applies: `{ok: true, result}` or `{ok: false, error}`."""
        return self.model_dump_json(exclude={"error"} if self.ok else {"result"}).encode()
