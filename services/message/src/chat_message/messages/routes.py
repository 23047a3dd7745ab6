"""HTTP routes of a conversation's messages and the read cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict

from chat_contracts.fields import Seq
from chat_contracts.socket import MessageContent
from chat_message.cursors.rules import CursorMove
from chat_message.deps import Services, budget, deletion
from chat_message.messages.models import EditMessage
from chat_message.resources import dump
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/conversations/{conversation_id}")


@router.post("/messages", status_code=201, dependencies=[budget("message:send")])
async def send(
    conversation_id: str,
    body: MessageContent,
    services: Services,
    user_id: CallerId,
    response: Response,
) -> dict[str, Any]:
    """Send a message; the same `client_msg_id` again returns the stored one (200)."""
    result = await services.messages.send(user_id, conversation_id, body)
    if not result.created:
        response.status_code = 200
    return dump(result.message)


@router.get("/messages", dependencies=[budget("messages:history")])
async def history(
    conversation_id: str,
    services: Services,
    user_id: CallerId,
    before_seq: Annotated[int | None, Query()] = None,
    after_seq: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A page of messages, ascending by seq."""
    items, more = await services.messages.history(
        user_id, conversation_id, before_seq=before_seq, after_seq=after_seq, limit=limit
    )
    return {"items": [dump(m) for m in items], "has_more": more}


@router.patch("/messages/{message_id}", dependencies=[budget("message:edit")])
async def edit(
    conversation_id: str, message_id: str, body: EditMessage, services: Services, user_id: CallerId
) -> dict[str, Any]:
    """Change the text of one's own message."""
    return dump(await services.messages.edit(user_id, conversation_id, message_id, body.text))


@deletion(router, "/messages/{message_id}", "message:delete")
async def delete(
    conversation_id: str, message_id: str, services: Services, user_id: CallerId
) -> None:
    """Delete one's own message, leaving a tombstone."""
    await services.messages.delete(user_id, conversation_id, message_id)


class ReadBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    seq: Seq


@router.post("/read", status_code=204, dependencies=[budget("conversation:read")])
async def read(
    conversation_id: str, body: ReadBody, services: Services, user_id: CallerId
) -> Response:
    """Move the caller's read cursor forward to `seq`."""
    await services.cursors.move(CursorMove(user_id, conversation_id, body.seq, "read"))
    return Response(status_code=204)
