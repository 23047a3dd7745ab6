"""Composition root of the message service: `create_app(settings)` builds every client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from gridfs import AsyncGridFSBucket

from chat_message.attachments.routes import router as attachments_router
from chat_message.commands import command_handlers, to_command_error
from chat_message.context import MessageContext
from chat_message.conversations.routes import router as conversations_router
from chat_message.cursors.batcher import CursorBatcher
from chat_message.indexes import INDEXES
from chat_message.messages.batcher import SendBatcher
from chat_message.messages.routes import router as messages_router
from chat_message.sessions import TransactionSessions
from chat_message.settings import MessageSettings
from chat_message.users import users_consumer
from chat_platform.app import create_service_app
from chat_platform.health import Health
from chat_platform.jwt import JwksKeys, TokenVerifier
from chat_platform.mongo import create_mongo_client, ensure_indexes, mongo_check
from chat_platform.outbox import Outbox
from chat_platform.rabbit import Broker, CommandServer, Consumer

log = logging.getLogger(__name__)

# Multipart framing around a file is small; this bounds it.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: MessageSettings) -> FastAPI:
    health = Health()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings.mongodb_url, app_name="chat-message")
        db = mongo[settings.mongodb_db]
        broker = Broker(
            settings.amqp_url.get_secret_value(), settings.events_exchange, name="chat-message"
        )
        http = httpx.AsyncClient()
        keys = JwksKeys(f"{settings.auth_url.rstrip('/')}/.well-known/jwks.json", http)
        ctx = MessageContext(
            settings=settings,
            mongo=mongo,
            db=db,
            broker=broker,
            outbox=Outbox(db["outbox"], broker),
            verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
            files=AsyncGridFSBucket(db),
        )
        ctx.batcher = SendBatcher(ctx, max_batch=settings.send_batch_max)
        ctx.cursors = CursorBatcher(ctx)
        ctx.transaction_sessions = TransactionSessions(
            mongo,
            db["transaction_sessions"],
            heartbeat=settings.session_heartbeat_seconds,
            dead_after=settings.session_dead_after_seconds,
        )
        await ensure_indexes(db, INDEXES)
        sessions_sweep = asyncio.create_task(
            ctx.transaction_sessions.run_forever(), name="transaction-sessions"
        )
        ctx.batcher.start()
        ctx.cursors.start()
        commands = CommandServer(
            broker,
            settings.queue_name("message.commands"),
            command_handlers(ctx),
            error_mapper=to_command_error,
        )
        users = Consumer(broker, users_consumer(ctx))
        await commands.start()
        await users.start()
        await broker.start()
        await keys.refresh()
        health.add("mongodb", mongo_check(mongo))
        health.add("rabbitmq", broker.check)
        relay = asyncio.create_task(ctx.outbox.relay_forever(), name="outbox-relay")
        app.state.ctx = ctx
        log.info("ready")
        try:
            yield
        finally:
            health.draining = True
            await commands.stop()
            await users.stop()
            await ctx.batcher.stop()
            await ctx.cursors.stop()
            for task in (relay, sessions_sweep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await ctx.transaction_sessions.close()
            await broker.close()
            await http.aclose()
            await mongo.close()

    def body_limit(path: str) -> int:
        if path == "/v1/attachments":
            return settings.max_attachment_bytes + UPLOAD_OVERHEAD_BYTES
        return settings.max_body_bytes

    app = create_service_app(
        "message",
        health=health,
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
        body_limit_for=body_limit,
        cors_origins=settings.cors_origin_list,
    )
    app.include_router(conversations_router)
    app.include_router(messages_router)
    app.include_router(attachments_router)
    return app
