"""Private servers: a run's own Redis and RabbitMQ start, restart, die and stop by their PID,
never touching the machine's shared ones."""

from __future__ import annotations

import asyncio
import socket

import aio_pika
import pytest
import redis

from chat_testkit.private import PrivateRabbitMQ, PrivateRedis, PrivateServerError


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_missing_program_is_an_error_naming_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PrivateServerError, match="Debian package redis-server"):
        PrivateRedis()


@pytest.mark.slow
def test_a_private_redis_starts_restarts_empty_and_stops() -> None:
    server = PrivateRedis()
    try:
        server.start()
        assert server.port != 6379
        first = server.pid
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        client.set("kept?", "no")
        client.close()

        server.restart()
        assert server.pid not in (None, first)
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        # Without persistence a restart forgets everything, as a lost cache would.
        assert client.get("kept?") is None
        client.close()

        server.kill()
        assert server.pid is None
        assert not _listening(server.port)
        server.start()
        assert redis.Redis.from_url(server.url, socket_timeout=2).ping()

        server.stop()
        assert not server.running
        assert not _listening(server.port)
    finally:
        server.close()
    assert not server.workdir.exists()


async def _publish(url: str, queue: str, body: bytes) -> None:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True)
        await channel.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue,
        )


async def _take(url: str, queue: str) -> bytes | None:
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, durable=True)
        message = await declared.get(fail=False)
        if message is None:
            return None
        await message.ack()
        return message.body


@pytest.mark.slow
def test_a_private_rabbitmq_node_keeps_durable_messages_across_a_restart_and_a_kill() -> None:
    node = PrivateRabbitMQ(name_prefix="kittest")
    try:
        node.start()
        assert node.port != 5672
        assert node.node.startswith("kittest")
        first = node.pid
        assert first is not None
        asyncio.run(_publish(node.url, "kept", b"one"))

        node.restart()
        assert node.pid not in (None, first)
        assert asyncio.run(_take(node.url, "kept")) == b"one"

        asyncio.run(_publish(node.url, "kept", b"two"))
        node.kill()
        assert not _listening(node.port)
        node.start()
        # A persistent message the broker confirmed survives a crash of the node.
        assert asyncio.run(_take(node.url, "kept")) == b"two"

        node.stop()
        assert not node.running
        assert not _listening(node.port)
    finally:
        node.close()
    assert not node.workdir.exists()
