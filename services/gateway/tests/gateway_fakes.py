"""In-memory stand-ins for the gateway's dependencies, for unit tests without I/O."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

from chat_contracts import Envelope
from chat_contracts.commands import Command, Reply
from chat_gateway.connections import Connection
from chat_gateway.presence import PresenceState
from chat_gateway.realtime import Realtime
from chat_gateway.settings import GatewaySettings
from chat_platform.jwt import Claims, TokenError
from chat_platform.ratelimit import Decision, Rate

# Every client event of the contract (CONTRACT §5), for tests that go through all of them.
CLIENT_EVENTS = [
    "message:send",
    "message:delivered",
    "conversation:read",
    "typing",
    "sync",
    "presence:query",
    "auth:refresh",
]


class FakeManager:
    def __init__(self) -> None:
        self.connected: set[str] = set()

    def is_connected(self, sid: str, namespace: str) -> bool:
        return sid in self.connected


class FakeSio:
    """What Realtime uses of `socketio.AsyncServer`, recorded."""

    def __init__(self) -> None:
        self.manager = FakeManager()
        self.emits: list[tuple[str, Any, Any]] = []
        self.disconnected: list[str] = []
        self.rooms: list[tuple[str, str]] = []
        self.handlers: dict[str, Callable[..., Any]] = {}

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self.handlers[event] = handler

    async def emit(self, event: str, data: Any, to: Any = None, **_: Any) -> None:
        self.emits.append((event, data, to))

    async def disconnect(self, sid: str) -> None:
        self.disconnected.append(sid)

    async def enter_room(self, sid: str, room: str) -> None:
        self.rooms.append((sid, room))

    def of(self, event: str) -> list[tuple[Any, Any]]:
        return [(data, to) for name, data, to in self.emits if name == event]


class FakeCommands:
    """Replies by command name: the reply's JSON, a function of the command's JSON, or an exception.

    Calls are recorded as (name, the command as JSON), what the message service would receive.
    """

    def __init__(self, replies: dict[str, Any] | None = None) -> None:
        self.replies = replies or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, command: Command[Any], *, timeout: Any = None) -> Reply:
        payload = command.model_dump(mode="json")
        self.calls.append((command.name, payload))
        reply = self.replies[command.name]
        if isinstance(reply, BaseException):
            raise reply
        result = reply(payload) if callable(reply) else reply
        if inspect.isawaitable(result):
            result = await result
        return type(command).reply.model_validate(result)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeVerifier:
    def __init__(self, tokens: dict[str, Claims] | None = None) -> None:
        self.tokens = tokens or {}

    async def verify(self, token: object) -> Claims:
        if isinstance(token, str) and token in self.tokens:
            return self.tokens[token]
        raise TokenError("invalid token")


class FakeBuckets:
    def __init__(self) -> None:
        self.decision = Decision(True, 0.0)
        self.error: Exception | None = None
        self.taken: list[tuple[str, Rate]] = []

    async def take(self, key: str, rate: Rate, cost: int = 1) -> Decision:
        self.taken.append((key, rate))
        if self.error is not None:
            raise self.error
        return self.decision


class FakePresence:
    def __init__(self) -> None:
        self.live: dict[str, set[str]] = {}
        self.restored: list[tuple[str, str]] = []
        self.renewed: list[tuple[str, str]] = []
        self.last_seen: dict[str, datetime] = {}
        self.error: Exception | None = None

    async def connected(self, user_id: str, sid: str) -> bool:
        self.live.setdefault(user_id, set()).add(sid)
        return len(self.live[user_id]) == 1

    async def disconnected(self, user_id: str, sid: str) -> datetime | None:
        sids = self.live.get(user_id, set())
        if sid not in sids:
            return None
        sids.discard(sid)
        return None if sids else datetime.now(UTC)

    async def apply(self, changes: list[Any]) -> list[bool | datetime | None]:
        if self.error is not None:
            raise self.error
        return [
            await (self.connected if c.online else self.disconnected)(c.user_id, c.sid)
            for c in changes
        ]

    async def renew(self, connections: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        self.renewed = list(connections)
        for user_id, sid in self.restored:
            self.live.setdefault(user_id, set()).add(sid)
        return self.restored

    async def sweep(self) -> list[tuple[str, datetime]]:
        return []

    async def states(self, user_ids: list[str]) -> dict[str, PresenceState]:
        if self.error is not None:
            raise self.error
        return {u: PresenceState(bool(self.live.get(u)), self.last_seen.get(u)) for u in user_ids}


class FakeBroker:
    def __init__(self) -> None:
        self.published: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> None:
        self.published.append(envelope)


def claims(sub: str, exp: float, jti: str = "j") -> Claims:
    return Claims(sub=sub, jti=jti, exp=int(exp), iat=int(exp) - 900)


class Harness:
    """A Realtime on fakes, with handles on each fake."""

    def __init__(self, **settings: Any) -> None:
        self.settings = GatewaySettings(**settings)
        self.sio = FakeSio()
        self.commands = FakeCommands()
        self.verifier = FakeVerifier()
        self.buckets = FakeBuckets()
        self.presence = FakePresence()
        self.broker = FakeBroker()
        self.realtime = Realtime.build(
            self.settings,
            cast(Any, self.sio),
            verifier=cast(Any, self.verifier),
            commands=cast(Any, self.commands),
            broker=cast(Any, self.broker),
            presence=cast(Any, self.presence),
            buckets=cast(Any, self.buckets),
        )
        self.realtime.register(cast(Any, self.sio))
        # The presence writer runs as the app's task group would run it.
        self.presence_writer = asyncio.get_running_loop().create_task(
            self.realtime.lifecycle.presence_changes.run()
        )

    def connect(self, sid: str, user_id: str, expires_at: float = 2e9) -> Connection:
        """A socket as if its connect handler had run and Socket.IO had confirmed it."""
        connection = Connection(sid, user_id, expires_at)
        self.realtime.connections.add(connection)
        self.sio.manager.connected.add(sid)
        return connection

    async def event(self, name: str, sid: str, *args: Any) -> Any:
        """Dispatch a client event the way Socket.IO would, by name or to the catch-all."""
        if name in self.sio.handlers and name not in ("*",):
            return await self.sio.handlers[name](sid, *args)
        return await self.sio.handlers["*"](name, sid, *args)


def message_json(message_id: str = "m1", seq: int = 1) -> dict[str, Any]:
    """A stored message as the message service answers it."""
    return {
        "id": message_id,
        "conversation_id": "c1",
        "seq": seq,
        "sender_id": "u1",
        "client_msg_id": f"k-{message_id}",
        "text": "hi",
        "attachments": [],
        "reply_to_id": None,
        "created_at": "2026-01-01T00:00:00Z",
        "edited_at": None,
        "deleted": False,
    }
