"""HTTP routes of a conversation's messages and the read cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from chat_message.cursors.service import move_cursor
from chat_message.deps import Ctx, UserId
from chat_message.messages import service
from chat_message.messages.models import EditMessage, SendMessage
from chat_message.views import dump

router = APIRouter(prefix="/v1/conversations/{conversation_id}")


@router.post("/messages", status_code=201)
async def send(
    conversation_id: str, body: SendMessage, ctx: Ctx, user_id: UserId, response: Response
) -> dict[str, Any]:
    """Send a message; the same `client_msg_id` again returns the stored one (200)."""
    result = await service.send_message(ctx, user_id, conversation_id, body)
    if not result.created:
        response.status_code = 200
    return dump(result.message)


@router.get("/messages")
async def history(
    conversation_id: str,
    ctx: Ctx,
    user_id: UserId,
    before_seq: Annotated[int | None, Query()] = None,
    after_seq: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A page of messages, ascending by seq."""
    items, more = await service.history(
        ctx, user_id, conversation_id, before_seq=before_seq, after_seq=after_seq, limit=limit
    )
    return {"items": [dump(m) for m in items], "has_more": more}


@router.patch("/messages/{message_id}")
async def edit(
    conversation_id: str, message_id: str, body: EditMessage, ctx: Ctx, user_id: UserId
) -> dict[str, Any]:
    """Change the text of one's own message."""
    return dump(await service.edit_message(ctx, user_id, conversation_id, message_id, body.text))


@router.delete("/messages/{message_id}", status_code=204)
async def delete(conversation_id: str, message_id: str, ctx: Ctx, user_id: UserId) -> Response:
    """Delete one's own message, leaving a tombstone."""
    await service.delete_message(ctx, user_id, conversation_id, message_id)
    return Response(status_code=204)


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    seq: int


@router.post("/read", status_code=204)
async def read(conversation_id: str, body: ReadBody, ctx: Ctx, user_id: UserId) -> Response:
    """Move the caller's read cursor forward to `seq`."""
    await move_cursor(ctx, user_id, conversation_id, body.seq, "read")
    return Response(status_code=204)
