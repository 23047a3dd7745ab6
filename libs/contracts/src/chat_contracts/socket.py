"""Payloads clients send to the gateway over Socket.IO (CONTRACT §5), closed and strict."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

from chat_contracts._base import ClosedModel
from chat_contracts.fields import ClientMsgId, Id, Seq, Text


class ClientPayload(ClosedModel):
    # Strict: a "1" is not a seq and a 1 is not a boolean.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class MessageContent(ClientPayload):
    """What a send carries, over REST and over the socket alike.

    The text bound here is only a parsing bound; the configurable limit
    (4000 characters by default) is the message service's to check.
    """

    client_msg_id: ClientMsgId
    text: Text | None = None
    attachment_ids: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    reply_to_id: Id | None = None


class SendMessagePayload(MessageContent):
    conversation_id: Id


class CursorPayload(ClientPayload):
    """`message:delivered` and `conversation:read`."""

    conversation_id: Id
    seq: Seq


class TypingPayload(ClientPayload):
    conversation_id: Id
    is_typing: bool


class SyncPayload(ClientPayload):
    """`sync`: the last seq held per conversation; `since` is the `synced_at` of the last sync."""

    cursors: Annotated[dict[Id, Seq], Field(max_length=1000)] = Field(default_factory=dict)
    since: Annotated[datetime, Field(strict=False)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] | None = None


class PresenceQueryPayload(ClientPayload):
    user_ids: Annotated[list[Id], Field(min_length=1, max_length=200)]


class AuthRefreshPayload(ClientPayload):
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
