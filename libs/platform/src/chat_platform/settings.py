"""The settings every service shares, read from the environment at start-up."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from chat_platform.ratelimit import Rate

# A rate in the environment is `per_second/burst`, e.g. RATE_SEND=20/60 (not JSON).
RateSetting = Annotated[Rate, NoDecode, BeforeValidator(Rate.parse)]

DEV_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class PlatformSettings(BaseSettings):
    """Base of each service's settings. Build it in `main()`, never at import time.

    `namespace` prefixes every RabbitMQ exchange and queue and every Redis key,
    so that test runs (and several deployments on one broker) never meet.
    """

    model_config = SettingsConfigDict(extra="ignore", env_prefix="")

    chat_env: Literal["dev", "test", "prod"] = "dev"
    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_db: str = "chat"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Connections one process holds to Redis; a burst beyond waits for one to come free.
    redis_max_connections: int = 64
    amqp_url: SecretStr = SecretStr(DEV_AMQP_URL)
    auth_url: str = "http://127.0.0.1:8001"
    namespace: str = Field(default="chat", pattern=r"^[a-z0-9_.-]{1,64}$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_body_bytes: int = 64 * 1024
    jwt_issuer: str = "chat-auth"
    jwt_audience: str = "chat"
    # Comma-separated browser origins allowed to call the REST API (the web client's, in dev).
    cors_origins: str = ""

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_dev(self) -> PlatformSettings:
        if self.chat_env == "prod" and self.amqp_url.get_secret_value() == DEV_AMQP_URL:
            raise ValueError("AMQP_URL still has the dev guest account; set it for production")
        return self

    # Per-user budgets (`per_second/burst`), shared by REST and the socket: an action named
    # in `budget_rates` costs its own bucket, any other one `rate_other`.
    rate_send: RateSetting = Rate(20.0, 60)
    rate_typing: RateSetting = Rate(4.0, 10)
    # A sync answer can be a MiB: far fewer than other actions, REST and socket alike.
    rate_sync: RateSetting = Rate(5.0, 30)
    rate_other: RateSetting = Rate(30.0, 100)

    def budget_rates(self) -> dict[str, Rate]:
        return {"message:send": self.rate_send, "typing": self.rate_typing, "sync": self.rate_sync}

    @property
    def events_exchange(self) -> str:
        # The contract's exchange is `chat.events`: the default namespace gives exactly that.
        return f"{self.namespace}.events"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def queue_name(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def redis_key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))
