"""Commands the gateways send over RabbitMQ; the same use cases as the REST routes."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chat_contracts import ErrorCode
from chat_contracts.socket import SyncPayload
from chat_message.context import MessageContext
from chat_message.conversations.store import conversation_for_member
from chat_message.cursors.service import move_cursor
from chat_message.messages.models import SendCommand
from chat_message.sync.service import sync
from chat_message.views import dump
from chat_platform.errors import ApiError, validation_details
from chat_platform.rabbit import CommandError, CommandHandler

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    user_id: Id


class MoveCursor(Command):
    conversation_id: Id
    seq: Annotated[int, Field(ge=0)]
    kind: Literal["delivered", "read"]


class Sync(Command):
    request: SyncPayload


class ConversationMembers(Command):
    conversation_id: Id


def command_handlers(ctx: MessageContext) -> dict[str, CommandHandler]:
    async def send(payload: dict[str, Any]) -> dict[str, Any]:
        result = await ctx.batcher.send(SendCommand.model_validate(payload))
        return {"message": dump(result.message), "created": result.created}

    async def cursor(payload: dict[str, Any]) -> dict[str, Any]:
        command = MoveCursor.model_validate(payload)
        moved = await move_cursor(
            ctx, command.user_id, command.conversation_id, command.seq, command.kind
        )
        return {"moved": moved}

    async def sync_(payload: dict[str, Any]) -> dict[str, Any]:
        command = Sync.model_validate(payload)
        return await sync(ctx, command.user_id, command.request)

    async def members(payload: dict[str, Any]) -> dict[str, Any]:
        command = ConversationMembers.model_validate(payload)
        doc = await conversation_for_member(ctx, command.conversation_id, command.user_id)
        return {"member_ids": doc["member_ids"]}

    async def contacts(payload: dict[str, Any]) -> dict[str, Any]:
        command = Command.model_validate(payload)
        ids = await ctx.conversations.distinct("member_ids", {"member_ids": command.user_id})
        return {"user_ids": sorted(i for i in ids if i != command.user_id)}

    return {
        "message.send": send,
        "cursor.move": cursor,
        "sync": sync_,
        "conversation.members": members,
        "user.contacts": contacts,
    }


def to_command_error(exc: Exception) -> CommandError | None:
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        # The command server decodes the body before any handler runs: bad input, not a crash.
        return CommandError(ErrorCode.VALIDATION_ERROR, "A command body is a JSON object.")
    if isinstance(exc, ApiError):
        return CommandError(exc.code, exc.message, exc.details)
    if isinstance(exc, ValidationError):
        return CommandError(
            ErrorCode.VALIDATION_ERROR,
            "The request is not valid.",
            validation_details(list(exc.errors())),
        )
    return None
