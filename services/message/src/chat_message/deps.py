"""FastAPI dependencies: the service context and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chat_message.context import MessageContext
from chat_platform.authn import bearer_user_id


def get_context(request: Request) -> MessageContext:
    ctx: MessageContext = request.app.state.ctx
    return ctx


Ctx = Annotated[MessageContext, Depends(get_context)]


async def current_user_id(request: Request, ctx: Ctx) -> str:
    return await bearer_user_id(request.headers.get("authorization"), ctx.verifier)


UserId = Annotated[str, Depends(current_user_id)]
