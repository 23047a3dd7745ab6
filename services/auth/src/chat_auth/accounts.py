"""Use cases: register, log in, refresh, log out. Handlers call these and nothing else."""

from __future__ import annotations

import logging
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from chat_auth.context import AuthContext
from chat_auth.users import store
from chat_auth.users.models import LoginRequest, RegisterRequest
from chat_contracts import Envelope
from chat_contracts.errors import ApiError, ErrorCode

log = logging.getLogger(__name__)

PRODUCER = "auth"
# Budgets per client address (there is no user yet), with rates of their own.
REGISTER_ACTION = "register"
LOGIN_ACTION = "login"


def _session(ctx: AuthContext, user_doc: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    return {
        "user": store.public_user(user_doc).model_dump(mode="json"),
        "access_token": ctx.signer.sign(user_doc["_id"]),
        "refresh_token": refresh_token,
        "token_type": "bearer",
        "expires_in": int(ctx.signer.ttl.total_seconds()),
    }


async def register(ctx: AuthContext, body: RegisterRequest, address: str) -> dict[str, Any]:
    """Store the user and stage `user.registered` in one transaction, publish after commit."""
    await ctx.budgets.spend(address, REGISTER_ACTION)
    password_hash = await ctx.hashing.hash(body.password)
    doc = store.new_user_document(body.username, password_hash, body.email, body.display_name)
    event = Envelope.wrap(store.registered_event(doc), PRODUCER)

    async def insert(session: AsyncClientSession) -> tuple[None, list[Envelope]]:
        await ctx.users.insert_one(doc, session=session)
        return None, [event]

    try:
        # A transient transaction error is retried: on a MongoDB replica set two concurrent
        # registrations of one name conflict as a WriteConflict first, and the retry turns
        # that into the DuplicateKeyError (409) it really is, never a 500.
        await ctx.transactions.commit_then_publish(insert)
    except DuplicateKeyError as exc:
        raise store.duplicate_error(exc) from None
    log.info("user registered", extra={"user_id": doc["_id"]})
    return _session(ctx, doc, await ctx.refresh_tokens.issue(doc["_id"]))


async def log_in(ctx: AuthContext, body: LoginRequest, address: str) -> dict[str, Any]:
    await ctx.budgets.spend(address, LOGIN_ACTION)
    doc = await store.find_for_login(ctx.users, body.username)
    # Reserved before the password is checked, so a parallel burst checks at most the budget.
    reservation = await ctx.throttle.reserve(doc["_id"] if doc else None, body.username, address)
    # Verifying against a decoy hash when the user does not exist keeps both failures equally slow.
    stored_hash = doc["password_hash"] if doc else ctx.decoy_password_hash
    ok = await ctx.hashing.verify(stored_hash, body.password)
    if not ok or doc is None:
        raise ApiError(ErrorCode.INVALID_CREDENTIALS, "Wrong username or password.")
    await ctx.throttle.succeeded(reservation)
    if ctx.hashing.needs_rehash(stored_hash):
        new_hash = await ctx.hashing.hash(body.password)
        await ctx.users.update_one({"_id": doc["_id"]}, {"$set": {"password_hash": new_hash}})
    return _session(ctx, doc, await ctx.refresh_tokens.issue(doc["_id"]))


async def refresh(ctx: AuthContext, refresh_token: str) -> dict[str, Any]:
    user_id, next_token = await ctx.refresh_tokens.rotate(refresh_token)
    doc = await store.find_by_id(ctx.users, user_id)
    if doc is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "The refresh token is not valid.")
    return _session(ctx, doc, next_token)


async def log_out(ctx: AuthContext, refresh_token: str) -> None:
    await ctx.refresh_tokens.revoke(refresh_token)
