"""What every HTTP service's FastAPI app has: error shape, body limit, metrics, health."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pymongo import AsyncMongoClient

from chat_platform.amqp import Broker
from chat_platform.background import Background
from chat_platform.errors import install_error_handlers
from chat_platform.health import Health
from chat_platform.http import BodySizeLimit
from chat_platform.metrics import HttpMetrics
from chat_platform.mongo import Document, mongo_check
from chat_platform.outbox import Outbox


def create_service_app(
    service: str,
    *,
    health: Health,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]],
    max_body_bytes: int,
    body_limit_for: Callable[[str], int] | None = None,
    cors_origins: list[str] | None = None,
) -> FastAPI:
    app = FastAPI(title=f"chat-{service}", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit_for=body_limit_for or (lambda _: max_body_bytes))
    if cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(HttpMetrics, service=service)
    app.include_router(health.router())
    return app


def run_outbox(
    background: Background,
    health: Health,
    *,
    mongo: AsyncMongoClient[Document],
    broker: Broker,
    outbox: Outbox,
) -> None:
    """What every service that writes with events runs: readiness of its database and its
    broker, and the outbox relay that publishes what a crash or an outage left staged."""
    health.add("mongodb", mongo_check(mongo))
    health.add("rabbitmq", broker.check)
    background.run(outbox.relay_forever(), "outbox-relay")
