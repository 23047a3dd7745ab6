"""Helpers of the message service's tests: users, a typed-enough API client, an event tap.

Imported by the tests as `message_support` (the package's conftest puts this
folder on `sys.path`); the name is specific so that it cannot shadow another
suite's helpers in one pytest run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage
from pymongo import MongoClient

from chat_testkit.users import User, register_user, register_users

ENVELOPE_KEYS = {"id", "type", "version", "occurred_at", "producer", "data"}
STORED_COLLECTIONS = (
    "conversations",
    "direct_pairs",
    "members",
    "messages",
    "attachments",
    "fs.files",
    "fs.chunks",
)
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)
# The start of a real x86-64 ELF executable header: what a renamed binary looks like.
ELF_HEADER = (
    b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00\x01\x00\x00\x00" + b"\x00" * 40
)


def new_client_msg_id() -> str:
    return uuid.uuid4().hex


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape with the expected status and code; returns the error."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    assert set(error) <= {"code", "message", "details"}, body
    return dict(error)


class MessageApi:
    """The message service over HTTP, acting as whichever user a call names."""

    def __init__(self, http: httpx.AsyncClient, message_url: str, auth_url: str) -> None:
        self.http = http
        self.url = message_url.rstrip("/")
        self.auth_url = auth_url.rstrip("/")

    async def register(self, prefix: str = "u") -> User:
        return await register_user(self.http, self.auth_url, prefix)

    async def register_many(self, n: int, prefix: str = "u") -> list[User]:
        return await register_users(self.http, self.auth_url, n, prefix)

    async def request(
        self, user: User | None, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
        return await self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    async def get(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "GET", path, **kwargs)

    async def post(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "POST", path, **kwargs)

    async def patch(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "PATCH", path, **kwargs)

    async def delete(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "DELETE", path, **kwargs)

    # --- use cases, asserting success ---------------------------------------------------------

    async def direct(self, user: User, other: User) -> dict[str, Any]:
        response = await self.post(
            user, "/v1/conversations", json={"type": "direct", "member_ids": [other.id]}
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())

    async def group(self, owner: User, members: Iterable[User], title: str = "g") -> dict[str, Any]:
        response = await self.post(
            owner,
            "/v1/conversations",
            json={"type": "group", "title": title, "member_ids": [m.id for m in members]},
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def send(
        self, user: User, conversation_id: str, text: str | None = "hello", **body: Any
    ) -> httpx.Response:
        payload = {"client_msg_id": body.pop("client_msg_id", new_client_msg_id()), **body}
        if text is not None:
            payload["text"] = text
        return await self.post(user, f"/v1/conversations/{conversation_id}/messages", json=payload)

    async def sent(
        self, user: User, conversation_id: str, text: str | None = "hello", **body: Any
    ) -> dict[str, Any]:
        response = await self.send(user, conversation_id, text, **body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def conversation(self, user: User, conversation_id: str) -> dict[str, Any]:
        response = await self.get(user, f"/v1/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def history(self, user: User, conversation_id: str, **params: Any) -> dict[str, Any]:
        response = await self.get(
            user, f"/v1/conversations/{conversation_id}/messages", params=params
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def all_messages(self, user: User, conversation_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.history(user, conversation_id, after_seq=after, limit=200)
            items += page["items"]
            if not page["has_more"]:
                return items
            after = items[-1]["seq"]

    async def upload(
        self, user: User, content: bytes, name: str = "pic.png", content_type: str = "image/png"
    ) -> httpx.Response:
        return await self.post(
            user, "/v1/attachments", files={"file": (name, content, content_type)}
        )


class StoredCounts:
    """Counts of what the service stores, read directly from its database."""

    def __init__(self, mongodb_url: str, db_name: str) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(
            mongodb_url, serverSelectionTimeoutMS=5000
        )
        self.db = self.client[db_name]

    def __call__(self) -> dict[str, int]:
        return {name: self.db[name].count_documents({}) for name in STORED_COLLECTIONS}

    def close(self) -> None:
        self.client.close()


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


def log_problems(text: str) -> list[str]:
    """Lines of a service log that show a crash or an unhandled error."""
    problems = []
    for line in text.splitlines():
        if "Traceback" in line or re.search(r'"level": "(error|critical)"', line):
            problems.append(line[:2000])
    return problems


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
