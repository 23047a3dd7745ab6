"""Composition root of the gateway: `create_app(settings)` builds the ASGI app and every client."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import socketio
from fastapi import FastAPI

from chat_gateway import metrics
from chat_gateway.fanout import Fanout
from chat_gateway.presence import Presence
from chat_gateway.realtime import Realtime
from chat_gateway.redis_link import HeartbeatRedisManager
from chat_gateway.settings import GatewaySettings
from chat_gateway.sio_server import GatewayServer
from chat_gateway.web_client import mount_web_client
from chat_platform.amqp import Broker, CommandClient, Consumer
from chat_platform.app import create_service_app
from chat_platform.background import background_tasks
from chat_platform.health import Health
from chat_platform.jwt import JwksKeys, TokenVerifier
from chat_platform.ratelimit import TokenBuckets
from chat_platform.redis_client import create_redis

log = logging.getLogger(__name__)

# Engine.IO's own frame limit; the contract limit (max_event_bytes) is checked per event
# so that a large payload gets an error acknowledgement instead of a dropped connection.
ENGINEIO_MAX_FRAME_BYTES = 1_000_000


class GatewayApp:
    """The ASGI application plus the handles `__main__` needs to drain it on SIGTERM."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.health = Health()
        self.manager = HeartbeatRedisManager(
            settings.redis_url,
            channel=settings.redis_key("socketio"),
            interval=settings.heartbeat_seconds,
            stale_after=settings.heartbeat_stale_seconds,
        )
        self.sio = GatewayServer(
            async_mode="asgi",
            client_manager=self.manager,
            cors_allowed_origins=settings.socket_cors_origin_list or None,
            max_http_buffer_size=ENGINEIO_MAX_FRAME_BYTES,
            logger=False,
            engineio_logger=False,
        )
        self.realtime: Realtime | None = None
        api = create_service_app(
            "gateway",
            health=self.health,
            lifespan=self._lifespan,
            max_body_bytes=settings.max_body_bytes,
        )
        mount_web_client(api, settings)
        self.asgi = socketio.ASGIApp(self.sio, other_asgi_app=api, socketio_path="socket.io")

    @contextlib.asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        settings = self.settings
        redis = create_redis(settings.redis_url, max_connections=settings.redis_max_connections)
        http = httpx.AsyncClient()
        keys = JwksKeys(f"{settings.auth_url.rstrip('/')}/.well-known/jwks.json", http)
        broker = Broker(
            settings.amqp_url.get_secret_value(), settings.events_exchange, name="chat-gateway"
        )
        commands = CommandClient(
            broker, settings.namespace, timeout=settings.command_timeout_seconds
        )
        realtime = Realtime.build(
            settings,
            self.sio,
            verifier=TokenVerifier(
                keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
            ),
            commands=commands,
            broker=broker,
            presence=Presence(redis, settings.redis_key("presence"), settings.presence_ttl_seconds),
            buckets=TokenBuckets(redis, settings.redis_key("rate")),
        )
        realtime.register(self.sio)
        self.realtime = realtime
        self.manager.on_missed = realtime.lifecycle.ask_to_sync
        # Deliveries in hand when the connection dropped come back, maybe late: catch up.
        broker.on_reconnect(lambda: self.manager.missed("consumer_restarted"))
        fanout = Fanout(
            self.manager,
            redis,
            commands,
            realtime.lifecycle.presence,
            seen_prefix=settings.redis_key("fanout-seen"),
        )
        consumer = Consumer(broker, fanout.consumer(settings.queue_name("gateway.events")))
        await commands.start()
        await consumer.start()
        await broker.start()
        await keys.refresh()
        # Start listening to the Redis channel now rather than at the first connection,
        # so that heartbeats (and readiness) mean something from the start.
        self.sio.manager_initialized = True
        self.manager.initialize()
        self.health.add("redis", redis.ping)
        self.health.add("redis-subscriber", self.manager.check)
        self.health.add("rabbitmq", broker.check)
        self.health.add("jwks", keys.check)
        lifecycle = realtime.lifecycle
        async with background_tasks() as background:
            background.run(self.manager.heartbeat_forever(), "redis-heartbeat")
            background.run(lifecycle.presence_changes.run(), "presence-changes")
            background.every(
                settings.presence_renew_seconds, lifecycle.renew_presence, "presence-renew"
            )
            background.every(5.0, lifecycle.sweep_presence, "presence-sweep")
            background.every(5.0, lifecycle.close_expired, "token-expiry")
            metrics.READY.set(1)
            log.info("ready", extra={"instance": self.manager.host_id})
            try:
                yield
            finally:
                metrics.READY.set(0)
                self.health.draining = True
                await consumer.stop()
        await broker.close()
        await http.aclose()
        await redis.aclose()

    async def drain(self) -> None:
        """Fail readiness, refuse new sockets, move the connected ones away in batches."""
        self.health.draining = True
        metrics.READY.set(0)
        if self.realtime is not None:
            log.info("draining", extra={"connections": len(self.realtime.connections)})
            await self.realtime.lifecycle.drain(self.settings.drain_seconds)


def create_app(settings: GatewaySettings) -> GatewayApp:
    return GatewayApp(settings)
