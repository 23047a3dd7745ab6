"""A connected Broker on this test's own exchange, and a way to watch what reaches RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aio_pika
import pytest_asyncio

from chat_platform.amqp import Broker
from chat_testkit.amqp import Rabbit


@pytest_asyncio.fixture
async def rabbit(amqp_url: str, namespace: str) -> AsyncIterator[Rabbit]:
    connection = await aio_pika.connect_robust(amqp_url)
    rabbit = Rabbit(connection, namespace)
    yield rabbit
    await rabbit.cleanup()
    await connection.close()


@pytest_asyncio.fixture
async def broker(amqp_url: str, rabbit: Rabbit) -> AsyncIterator[Broker]:
    broker = Broker(amqp_url, rabbit.exchange, name="platform-tests")
    await broker.start()
    assert broker.connected, "RabbitMQ did not accept the connection"
    yield broker
    await broker.close()
