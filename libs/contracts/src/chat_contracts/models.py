"""Resources as every client sees them: users, conversations, messages."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from chat_contracts._base import ClosedModel

ConversationType = Literal["direct", "group"]
PresenceVisibleTo = Literal["contacts", "nobody"]
GroupInvitesFrom = Literal["everyone", "contacts"]


class User(ClosedModel):
    id: str
    username: str
    display_name: str
    created_at: datetime


class Attachment(ClosedModel):
    id: str
    name: str
    content_type: str
    size: int


class Message(ClosedModel):
    id: str
    conversation_id: str
    seq: int
    sender_id: str
    client_msg_id: str
    text: str | None
    attachments: list[Attachment]
    reply_to_id: str | None
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class Conversation(ClosedModel):
    """A conversation; `read_seq` and `unread_count` are those of the user it is shown to."""

    id: str
    type: ConversationType
    title: str | None
    member_ids: list[str]
    created_at: datetime
    updated_at: datetime
    last_seq: int
    last_message: Message | None
    read_seq: int = 0
    unread_count: int = 0


class UserSettings(ClosedModel):
    """A user's privacy and notification choices (CONTRACT §7.2; defaults per §7.5)."""

    presence_visible_to: PresenceVisibleTo = "contacts"
    group_invites_from: GroupInvitesFrom = "everyone"
    push_previews: bool = True
