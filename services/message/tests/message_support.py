"""Helpers of the message service's tests: an event tap, stored counts, metrics, sample files.

Imported by the tests as `message_support` (pytest's `pythonpath` has this
folder); the name is specific so that it cannot shadow another suite's helpers
in one pytest run. Users and REST calls are `chat_testkit.api`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

ENVELOPE_KEYS = {"id", "type", "version", "occurred_at", "producer", "data"}
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
# The start of a real x86-64 ELF executable header: what a renamed binary looks like.
ELF_HEADER = (
    b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 40
)


# Per-user budgets out of the way of tests that are not about them (some send hundreds of
# messages as one user); a module's `message_extra_env` can set its own.
UNLIMITED_RATES = {
    f"RATE_{action}": "100000/100000"
    for action in (
        "SEND",
        "SYNC",
        "OTHER",
        "EDIT",
        "DELETE",
        "CREATE_CONVERSATION",
        "MEMBERS",
        "UPLOAD",
        "HISTORY",
    )
}


@dataclass
class EventTap:
    """A queue of the test's own bound to the events exchange: every event, in arrival order.

    The connection is a plain one: if the broker goes away the tap does not hide it.
    A `durable` tap's queue keeps its binding and the events routed to it while the
    tap is detached (and across a restart of the broker); `attach` consumes it again.
    """

    exchange: str
    queue_name: str
    durable: bool
    routing_key: str = "#"
    connection: AbstractConnection | None = None
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(
        cls, amqp_url: str, exchange: str, *, durable: bool = False, routing_key: str = "#"
    ) -> EventTap:
        tap = cls(exchange, f"{exchange}.tap.{uuid.uuid4().hex[:8]}", durable, routing_key)
        await tap.attach(amqp_url)
        return tap

    async def attach(self, amqp_url: str) -> None:
        self.connection = await aio_pika.connect(amqp_url)
        channel = await self.connection.channel()
        topic = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(
            self.queue_name,
            durable=self.durable,
            exclusive=not self.durable,
            auto_delete=not self.durable,
        )
        await queue.bind(topic, routing_key=self.routing_key)
        await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        envelope = json.loads(message.body)
        self.envelopes.append(envelope)
        self._arrived.set()
        await message.ack()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.envelopes if e["type"] == event_type]

    def unique(self, event_type: str) -> dict[str, dict[str, Any]]:
        """Envelopes of a type deduplicated by envelope id, as a consumer would."""
        return {e["id"]: e for e in self.of_type(event_type)}

    async def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The first `count` envelopes matching `predicate`, waiting up to `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = [e for e in self.envelopes if predicate(e)]
            if len(found) >= count:
                return found[:count]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                seen = [e["type"] for e in self.envelopes]
                raise AssertionError(f"{len(found)}/{count} matching events in {timeout}s: {seen}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))

    async def wait_for_keys(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        key: Callable[[dict[str, Any]], str],
        expected: set[str],
        *,
        timeout: float = 10.0,
    ) -> set[str]:
        """Keys of the envelopes matching `predicate`, once they include every expected key.

        Unlike `wait_for` with a count, redelivered duplicates do not make it return early.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = {key(e) for e in self.envelopes if predicate(e)}
            if expected <= found:
                return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                missing = sorted(expected - found)
                raise AssertionError(
                    f"{len(missing)} expected events missing after {timeout}s: {missing[:5]}"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(remaining, 0.5))

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
            self.connection = None


def metric_value(metrics_text: str, name: str) -> float:
    """The value of an unlabelled series in a /metrics page (0 when absent)."""
    for line in metrics_text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def count_500s(metrics_text: str) -> float:
    """Requests answered 500, from the service's own latency histogram."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("chat_message_http_request_duration_seconds_count") and (
            'status="500"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total
