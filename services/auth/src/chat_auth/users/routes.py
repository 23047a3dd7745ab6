"""HTTP routes of /v1/users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from chat_auth.deps import Ctx
from chat_auth.users import store
from chat_contracts.errors import not_found
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/users")


@router.get("/me")
async def me(ctx: Ctx, user_id: CallerId) -> dict[str, Any]:
    """The caller's user."""
    doc = await store.find_by_id(ctx.users, user_id)
    if doc is None:
        raise not_found("User")
    return store.public_user(doc).model_dump(mode="json")


@router.get("")
async def search(
    ctx: Ctx,
    _: CallerId,
    q: Annotated[str, Query(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Users whose username starts with `q`."""
    docs = await store.search_by_prefix(ctx.users, q, limit)
    return {"items": [store.public_user(d).model_dump(mode="json") for d in docs]}


@router.get("/{user_id}")
async def get_user(user_id: str, ctx: Ctx, _: CallerId) -> dict[str, Any]:
    """A user's public profile."""
    doc = await store.find_by_id(ctx.users, user_id) if len(user_id) <= 64 else None
    if doc is None:
        raise not_found("User")
    return store.public_user(doc).model_dump(mode="json")
