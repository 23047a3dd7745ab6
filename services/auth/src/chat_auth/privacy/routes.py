"""HTTP routes of /v1/users/me/blocks and /v1/users/me/settings (CONTRACT §7.2)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from chat_auth.deps import Ctx
from chat_auth.privacy import service
from chat_auth.privacy.models import SettingsPatch
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/users/me")

TargetId = Annotated[str, Path(min_length=1, max_length=64)]


@router.put("/blocks/{user_id}", status_code=204)
async def block(user_id: TargetId, ctx: Ctx, caller: CallerId) -> Response:
    """Block a user (idempotent)."""
    await service.block(ctx, caller, user_id)
    return Response(status_code=204)


@router.delete("/blocks/{user_id}", status_code=204)
async def unblock(user_id: TargetId, ctx: Ctx, caller: CallerId) -> Response:
    """Unblock a user (idempotent)."""
    await service.unblock(ctx, caller, user_id)
    return Response(status_code=204)


@router.get("/blocks")
async def blocks(
    ctx: Ctx,
    caller: CallerId,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """The users the caller blocked, a page at a time (`next_cursor` until null)."""
    return await service.list_blocked(ctx, caller, cursor, limit)


@router.get("/settings")
async def get_settings(ctx: Ctx, caller: CallerId) -> dict[str, Any]:
    """The caller's privacy and notification settings."""
    return (await service.get_settings(ctx, caller)).model_dump(mode="json")


@router.patch("/settings")
async def patch_settings(body: SettingsPatch, ctx: Ctx, caller: CallerId) -> dict[str, Any]:
    """Change some of the caller's settings; the answer is the whole settings."""
    return (await service.change_settings(ctx, caller, body.changes())).model_dump(mode="json")
