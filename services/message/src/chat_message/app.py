"""Composition root of the message service: `create_app(settings)`.

The lifespan builds the infrastructure first (database, broker, transactions,
token verification), then the use cases, each given only what it uses, then
the two doors onto them: the REST routes and the gateways' command queue.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

import httpx
from fastapi import FastAPI
from gridfs import AsyncGridFSBucket

from chat_message.attachments.routes import router as attachments_router
from chat_message.attachments.service import Attachments, UploadLimits
from chat_message.commands import command_handlers
from chat_message.consent import Consent
from chat_message.conversations.routes import router as conversations_router
from chat_message.conversations.service import Conversations
from chat_message.cursors.service import Cursors
from chat_message.cursors.writer import write_moves
from chat_message.messages.routes import router as messages_router
from chat_message.messages.rules import SendLimits
from chat_message.messages.service import Messages
from chat_message.messages.writer import SEND_SECONDS, write_sends
from chat_message.services import MessageServices
from chat_message.settings import MessageSettings
from chat_message.store import INDEXES, Store
from chat_message.sync.service import Sync
from chat_message.users import users_consumer
from chat_platform.amqp import Broker, CommandServer, Consumer
from chat_platform.app import create_service_app, run_outbox
from chat_platform.background import background_tasks
from chat_platform.group_commit import GroupCommit, Req, Res, WriteBatch
from chat_platform.health import Health
from chat_platform.jwt import JwksKeys, TokenVerifier
from chat_platform.mongo import create_mongo_client, ensure_indexes
from chat_platform.outbox import Outbox
from chat_platform.ratelimit import Budgets, TokenBuckets
from chat_platform.redis_client import create_redis
from chat_platform.sessions import TransactionSessions
from chat_platform.transactions import Transactions

log = logging.getLogger(__name__)

# Multipart framing around a file is small; this bounds it.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: MessageSettings) -> FastAPI:
    health = Health()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mongo = create_mongo_client(settings.mongodb_url, app_name="chat-message")
        db = mongo[settings.mongodb_db]
        store = Store.of(db)
        broker = Broker(
            settings.amqp_url.get_secret_value(), settings.events_exchange, name="chat-message"
        )
        redis = create_redis(settings.redis_url, max_connections=settings.redis_max_connections)
        # Shared with the gateways' (same keys): REST and the socket spend one budget.
        budgets = Budgets(
            TokenBuckets(redis, settings.redis_key("rate")),
            settings.budget_rates(),
            settings.rate_other,
        )
        http = httpx.AsyncClient()
        keys = JwksKeys(f"{settings.auth_url.rstrip('/')}/.well-known/jwks.json", http)
        sessions = TransactionSessions(
            mongo,
            db["transaction_sessions"],
            heartbeat=settings.session_heartbeat_seconds,
            dead_after=settings.session_dead_after_seconds,
        )
        outbox = Outbox(db["outbox"], broker)
        transactions = Transactions(sessions.start, outbox)

        def group_commit(
            write: WriteBatch[Req, Res],
            name: str,
            batch: int,
            on_written: Callable[[float], None] | None = None,
        ) -> GroupCommit[Req, Res]:
            return GroupCommit(
                write,
                name=name,
                max_batch=batch,
                max_waiting=settings.max_waiting_writes,
                failure_message="It could not be stored; retry.",
                on_written=on_written,
            )

        sends = group_commit(
            functools.partial(write_sends, store, transactions),
            "send-writer",
            settings.send_batch_max,
            on_written=SEND_SECONDS.observe,
        )
        moves = group_commit(
            functools.partial(write_moves, store, transactions),
            "cursor-writer",
            settings.cursor_batch_max,
        )
        consent = Consent(store)
        attachments = Attachments(
            store,
            AsyncGridFSBucket(db),
            UploadLimits(
                max_bytes=settings.max_attachment_bytes,
                quota_bytes=settings.upload_quota_bytes,
                per_user=settings.max_uploads_per_user,
                per_instance=settings.max_uploads_per_instance,
                gc_grace_seconds=settings.attachment_gc_grace_seconds,
            ),
        )
        services = MessageServices(
            conversations=Conversations(
                store, transactions, consent, max_group_members=settings.max_group_members
            ),
            messages=Messages(
                store,
                transactions,
                sends,
                SendLimits(settings.max_text_chars, settings.max_attachments_per_message),
                attachments,
            ),
            cursors=Cursors(moves),
            sync=Sync(
                store,
                messages_per_conversation=settings.sync_messages_per_conversation,
                max_conversations=settings.sync_max_conversations,
                max_messages=settings.sync_max_messages,
                max_bytes=settings.sync_max_bytes,
            ),
            attachments=attachments,
            consent=consent,
        )
        handlers = command_handlers(services, store)
        # Writes and catch-up reads on queues of their own: a reconnect storm's syncs never
        # hold up sends.
        writes = CommandServer(broker, settings.queue_name("message.commands"), handlers)
        reads = CommandServer(
            broker, settings.queue_name("message.reads"), handlers, prefetch=settings.read_prefetch
        )
        users = Consumer(broker, users_consumer(store, settings.queue_name("message.users")))

        await ensure_indexes(db, INDEXES)
        async with background_tasks() as background:
            background.run(sessions.run_forever(), "transaction-sessions")
            background.run(sends.run(), "send-writer")
            background.run(moves.run(), "cursor-writer")
            background.every(
                settings.attachment_gc_every_seconds, attachments.sweep, "attachment-sweep"
            )
            await writes.start()
            await reads.start()
            await users.start()
            await broker.start()
            await keys.refresh()
            run_outbox(background, health, mongo=mongo, broker=broker, outbox=outbox)
            # Without the keys every request would be refused as unauthorized: not ready.
            health.add("jwks", keys.check)
            app.state.services = services
            app.state.budgets = budgets
            app.state.token_verifier = TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            )
            log.info("ready")
            try:
                yield
            finally:
                health.draining = True
                await writes.stop()
                await reads.stop()
                await users.stop()
                await sends.stop()
                await moves.stop()
                await transactions.close()
        await sessions.close()
        await broker.close()
        await http.aclose()
        await redis.aclose()
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
