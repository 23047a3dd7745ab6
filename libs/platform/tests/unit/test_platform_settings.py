"""Shared settings: read from the environment, namespaced names, dev secrets refused in prod."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chat_platform.ratelimit import Rate
from chat_platform.settings import DEV_AMQP_URL, PlatformSettings

VARIABLES = ["CHAT_ENV", "MONGODB_URL", "MONGODB_DB", "REDIS_URL", "AMQP_URL", "NAMESPACE"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_dev_defaults_name_the_contract_exchange() -> None:
    settings = PlatformSettings()
    assert settings.chat_env == "dev"
    assert settings.events_exchange == "chat.events"
    assert settings.queue_name("gateway.events") == "chat.gateway.events"
    assert settings.redis_key("presence", "u1") == "chat:presence:u1"
    assert settings.max_body_bytes == 64 * 1024


def test_environment_is_read_and_secrets_stay_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "t123")
    monkeypatch.setenv("MONGODB_DB", "other")
    monkeypatch.setenv("AMQP_URL", "amqp://user:s3cret@127.0.0.1:5672/")
    settings = PlatformSettings()
    assert settings.events_exchange == "t123.events"
    assert settings.mongodb_db == "other"
    assert settings.amqp_url.get_secret_value() == "amqp://user:s3cret@127.0.0.1:5672/"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize("namespace", ["", "Upper", "has space", "a:b", "x" * 65])
def test_bad_namespace_is_refused(namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", namespace)
    with pytest.raises(ValidationError):
        PlatformSettings()


def test_dev_broker_account_is_refused_in_prod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ENV", "prod")
    with pytest.raises(ValidationError, match="AMQP_URL"):
        PlatformSettings()
    monkeypatch.setenv("AMQP_URL", "amqp://chat:real@rabbitmq:5672/")
    assert PlatformSettings().amqp_url.get_secret_value() != DEV_AMQP_URL


def test_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAT_ENV", "staging")
    with pytest.raises(ValidationError):
        PlatformSettings()


def test_a_budget_rate_is_set_as_per_second_slash_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_SEND", "2.5/40")
    settings = PlatformSettings()
    assert settings.rate_send == Rate(2.5, 40)
    assert settings.budget_rates()["message:send"] == Rate(2.5, 40)
    assert settings.rate_other == Rate(30.0, 100)
    for bad in ("20", "x/60", "20/"):
        monkeypatch.setenv("RATE_SEND", bad)
        with pytest.raises(ValidationError):
            PlatformSettings()
