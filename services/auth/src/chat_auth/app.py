"""Composition root of the auth service: `create_app(settings)` builds every client."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

from argon2 import PasswordHasher
from fastapi import FastAPI

from chat_auth.context import AuthContext
from chat_auth.hashing import PasswordHashing, concurrent_hashes, memory_limit_bytes
from chat_auth.keys import load_signing_key
from chat_auth.privacy import store as privacy_store
from chat_auth.privacy.routes import router as privacy_router
from chat_auth.settings import AuthSettings
from chat_auth.throttle import LoginThrottle
from chat_auth.tokens import refresh as refresh_tokens
from chat_auth.tokens.access import AccessTokenSigner
from chat_auth.tokens.refresh import RefreshTokens
from chat_auth.tokens.routes import router as auth_router
from chat_auth.users import store as user_store
from chat_auth.users.routes import router as users_router
from chat_platform.amqp import Broker
from chat_platform.app import create_service_app, run_outbox
from chat_platform.background import background_tasks
from chat_platform.health import Health
from chat_platform.jwt import StaticKeys, TokenVerifier
from chat_platform.mongo import Index, create_mongo_client, ensure_indexes
from chat_platform.outbox import Outbox
from chat_platform.ratelimit import Budgets, TokenBuckets
from chat_platform.redis_client import create_redis
from chat_platform.transactions import Transactions

log = logging.getLogger(__name__)

OUTBOX_INDEXES = [Index("outbox", [("created_at", 1)], {"name": "created_at"})]


def create_app(settings: AuthSettings) -> FastAPI:
    health = Health()
    if settings.trust_forwarded_for:
        log.warning("TRUST_FORWARDED_FOR is deprecated: set TRUSTED_PROXIES to the proxies' CIDRs")
    # Loading (or, in dev, generating) the key up front makes a bad key fail the start, not a request.
    signing_key = load_signing_key(
        settings.jwt_private_key_file, generate_if_missing=settings.chat_env != "prod"
    )

    hasher = PasswordHasher()
    memory = memory_limit_bytes()
    slots = concurrent_hashes(
        settings.max_concurrent_hashes,
        memory,
        settings.hash_memory_fraction,
        hasher.memory_cost * 1024,
    )
    log.info("password hashing", extra={"concurrent_hashes": slots, "memory_bytes": memory})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings.mongodb_url, app_name="chat-auth")
        db = mongo[settings.mongodb_db]
        redis = create_redis(settings.redis_url, max_connections=settings.redis_max_connections)
        broker = Broker(
            settings.amqp_url.get_secret_value(), settings.events_exchange, name="chat-auth"
        )
        hashing = PasswordHashing(hasher, slots)
        signer = AccessTokenSigner(
            signing_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        )
        outbox = Outbox(db["outbox"], broker)
        ctx = AuthContext(
            settings=settings,
            users=db["users"],
            blocks=db["blocks"],
            redis=redis,
            transactions=Transactions(mongo.start_session, outbox),
            hashing=hashing,
            signer=signer,
            refresh_tokens=RefreshTokens(
                db["refresh_tokens"], timedelta(days=settings.refresh_token_ttl_days)
            ),
            throttle=LoginThrottle(
                redis,
                settings.redis_key("auth"),
                per_account=settings.login_failures_per_username,
                per_address=settings.login_failures_per_address,
                window=settings.login_failure_window_seconds,
            ),
            budgets=Budgets(
                TokenBuckets(redis, settings.redis_key("rate")),
                settings.budget_rates(),
                settings.rate_other,
            ),
            decoy_password_hash=await hashing.hash(secrets.token_hex(16)),
        )
        await ensure_indexes(
            db,
            [
                *user_store.INDEXES,
                *privacy_store.INDEXES,
                *refresh_tokens.INDEXES,
                *OUTBOX_INDEXES,
            ],
        )
        async with background_tasks() as background:
            await broker.start()
            run_outbox(background, health, mongo=mongo, broker=broker, outbox=outbox)
            health.add("redis", redis.ping)
            app.state.ctx = ctx
            app.state.token_verifier = TokenVerifier(
                StaticKeys(signer.jwks), issuer=settings.jwt_issuer, audience=settings.jwt_audience
            )
            log.info("ready", extra={"kid": signer.jwk["kid"]})
            try:
                yield
            finally:
                health.draining = True
        hashing.close()
        await broker.close()
        await redis.aclose()
        await mongo.close()

    app = create_service_app(
        "auth",
        health=health,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        cors_origins=settings.cors_origin_list,
    )
    app.include_router(auth_router)
    # Before the users router, whose /v1/users/{id} would otherwise read `me` as an id.
    app.include_router(privacy_router)
    app.include_router(users_router)
    return app
