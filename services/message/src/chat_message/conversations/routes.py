"""HTTP routes of /v1/conversations (the conversations themselves and their members)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from chat_message.conversations.models import AddMembers, CreateConversation
from chat_message.deps import Services, budget, deletion
from chat_message.resources import dump
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/conversations")


@router.post("", status_code=201, dependencies=[budget("conversation:create")])
async def create(
    body: Annotated[CreateConversation, Body()],
    services: Services,
    user_id: CallerId,
    response: Response,
) -> dict[str, Any]:
    """Create a group, or get-or-create the direct conversation with someone."""
    conversation, created = await services.conversations.create(user_id, body)
    if not created:
        response.status_code = 200
    return dump(conversation)


@router.get("", dependencies=[budget("conversation:list")])
async def list_conversations(
    services: Services,
    user_id: CallerId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    """The caller's conversations, most recent activity first."""
    items, next_cursor = await services.conversations.list_page(user_id, limit, cursor)
    return {"items": [dump(c) for c in items], "next_cursor": next_cursor}


@router.get("/{conversation_id}")
async def get(conversation_id: str, services: Services, user_id: CallerId) -> dict[str, Any]:
    """One conversation, for its members."""
    return dump(await services.conversations.get(user_id, conversation_id))


@router.post("/{conversation_id}/members", dependencies=[budget("conversation:members")])
async def add_members(
    conversation_id: str, body: AddMembers, services: Services, user_id: CallerId
) -> dict[str, Any]:
    """Add people to a group."""
    return dump(await services.conversations.add_members(user_id, conversation_id, body))


@deletion(router, "/{conversation_id}/members/{member_id}", "conversation:members")
async def remove_member(
    conversation_id: str, member_id: str, services: Services, user_id: CallerId
) -> None:
    """Leave a group, or (its owner) remove someone from it."""
    await services.conversations.remove_member(user_id, conversation_id, member_id)
