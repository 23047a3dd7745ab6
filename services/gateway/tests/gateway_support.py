"""Helpers of the gateway's tests: Socket.IO devices that record what they get, and more.

Imported by the tests as `gateway_support` (pytest's `pythonpath` has this
folder); the name is specific so that it cannot shadow another suite's helpers
in one pytest run. Users and REST calls are `chat_testkit.api`'s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from chat_platform.jwt import public_jwk
from chat_testkit.api import User, new_client_msg_id
from chat_testkit.process import ServiceProcess, log_problems
from chat_testkit.tokens import access_claims, encode

Predicate = Callable[[Any], bool]


# Small timeouts so that the behaviour under test shows up in a second or two, and rate
# limits out of the way of tests that are not about them (one test sends hundreds of events).
FAST_GATEWAY_ENV = {
    "TYPING_TIMEOUT_SECONDS": "1",
    "TOKEN_GRACE_SECONDS": "1",
    "DRAIN_SECONDS": "2",
    "RATE_SEND": "1000/1000",
    "RATE_TYPING": "1000/1000",
    "RATE_SYNC": "1000/1000",
    "RATE_PRESENCE_QUERY": "1000/1000",
    "RATE_AUTH_REFRESH": "1000/1000",
    "RATE_OTHER": "1000/1000",
}


class Device:
    """One Socket.IO connection of a user, recording every event the server emits to it.

    `connect()` again (to the same or another gateway) keeps what was recorded,
    as an app keeps its screen across reconnects.
    """

    def __init__(self, user: User, label: str | None = None) -> None:
        self.user = user
        self.label = label or user.username
        self.received: list[tuple[str, Any]] = []
        self.disconnects: list[Any] = []
        self.url: str | None = None
        self.sio = self._client()

    def _client(self) -> socketio.AsyncClient:
        sio = socketio.AsyncClient(reconnection=False)
        sio.on("*", self._on_event)
        sio.on("connect", self._on_connect)
        sio.on("disconnect", self._on_disconnect)
        return sio

    async def _on_event(self, event: str, *args: Any) -> None:
        self.received.append((event, args[0] if len(args) == 1 else args))

    async def _on_connect(self) -> None:
        return None

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnects.append(reason)

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    async def connect(self, url: str, token: str | None = None) -> Device:
        if self.sio.connected:
            await self.sio.disconnect()
        self.sio = self._client()
        self.url = url
        await self.sio.connect(
            url,
            auth={"token": token or self.user.token},
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
        await self.sio.shutdown()

    # --- speaking ---------------------------------------------------------------------------

    async def call(self, event: str, data: Any = None, timeout: float = 15.0) -> Any:
        """The acknowledgement of one event (`data` a tuple sends several arguments)."""
        return await self.sio.call(event, data, timeout=timeout)

    async def ok(self, event: str, data: Any, timeout: float = 15.0) -> dict[str, Any]:
        ack = await self.call(event, data, timeout)
        assert isinstance(ack, dict), (event, data, ack)
        assert ack.get("ok") is True, (event, data, ack)
        return ack

    async def error(self, event: str, data: Any = None, timeout: float = 15.0) -> dict[str, Any]:
        """The error of an acknowledgement that must be one, checked for the contract's shape."""
        ack = await self.call(event, data, timeout)
        return assert_error_ack(ack)

    async def send(
        self, conversation_id: str, text: str, client_msg_id: str | None = None
    ) -> dict[str, Any]:
        ack = await self.ok(
            "message:send",
            {
                "conversation_id": conversation_id,
                "client_msg_id": client_msg_id or new_client_msg_id(),
                "text": text,
            },
        )
        return dict(ack["message"])

    async def sync(self, cursors: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
        return await self.ok("sync", {"cursors": cursors or {}, **extra})

    # --- what it got ------------------------------------------------------------------------

    def of(self, event: str, predicate: Predicate | None = None) -> list[Any]:
        return [
            data
            for name, data in list(self.received)
            if name == event and (predicate is None or predicate(data))
        ]

    async def wait_for(
        self,
        event: str,
        predicate: Predicate | None = None,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[Any]:
        """The first `count` events of that name matching `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.of(event, predicate)
            if len(found) >= count:
                return found[:count]
            if time.monotonic() >= deadline:
                names = [name for name, _ in self.received][-30:]
                raise AssertionError(
                    f"{self.label}: {len(found)}/{count} {event!r} events in {timeout} s; "
                    f"last events: {names}"
                )
            await asyncio.sleep(0.02)

    async def wait_disconnected(self, timeout: float) -> float:
        """Wait until the server closes this connection; the seconds it took."""
        started = time.monotonic()
        while self.sio.connected:
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{self.label} still connected after {timeout} s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started


class RawSocket:
    """Socket.IO spoken by hand over a WebSocket, to send frames no client library would."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, url: str, token: str) -> RawSocket:
        ws_url = url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = await self.session.ws_connect(ws_url)
        assert (await self.frame(5)).startswith("0{")  # Engine.IO open
        await self.send("40" + json.dumps({"token": token}))
        # The user's events may already flow (the socket joins its rooms in the connect
        # handler, before the confirmation goes out): skip them.
        while (connected := await self.frame(5)).startswith("42["):
            pass
        assert connected.startswith("40{"), connected
        return self

    async def send(self, frame: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(frame, bytes):
            await self.ws.send_bytes(frame)
        else:
            await self.ws.send_str(frame)

    async def frame(self, timeout: float) -> str:
        """The next Socket.IO frame, answering Engine.IO pings on the way."""
        assert self.ws is not None
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            assert message.type == aiohttp.WSMsgType.TEXT, message
            if message.data == "2":
                await self.send("3")
                continue
            return str(message.data)

    async def ack(self, ack_id: int, timeout: float = 10.0) -> Any:
        """The acknowledgement with that id (other frames are skipped)."""
        deadline = time.monotonic() + timeout
        prefix = f"43{ack_id}["
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if frame.startswith(prefix):
                return json.loads(frame[len(prefix) - 1 :])[0]

    async def frames_for(self, seconds: float) -> list[str]:
        """Whatever the server sends within `seconds`."""
        frames: list[str] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frames.append(await self.frame(left))
            except TimeoutError:
                break
        return frames

    @property
    def open(self) -> bool:
        return self.ws is not None and not self.ws.closed

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.session.close()


def assert_error_ack(ack: Any, code: str | None = None) -> dict[str, Any]:
    """`{ok: false, error: {code, message, details?}}`; returns the error."""
    assert isinstance(ack, dict), ack
    assert ack.get("ok") is False, ack
    assert set(ack) == {"ok", "error"}, ack
    error = ack["error"]
    assert isinstance(error.get("code"), str), ack
    assert isinstance(error.get("message"), str), ack
    assert error["message"], ack
    assert set(error) <= {"code", "message", "details"}, ack
    if code is not None:
        assert error["code"] == code, ack
    return dict(error)


async def refused(url: str, auth: Any) -> list[Any]:
    """Connect with `auth` expecting a refusal; the data of every `connect_error` received."""
    errors: list[Any] = []
    sio = socketio.AsyncClient(reconnection=False)

    async def on_connect_error(data: Any = None) -> None:
        errors.append(data)

    sio.on("connect_error", on_connect_error)
    try:
        await sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        pass
    else:
        await sio.disconnect()
        raise AssertionError(f"connection with auth={auth!r} was accepted")
    finally:
        await sio.shutdown()
    return errors


# --- tokens the auth service would never issue ------------------------------------------------


def signing_key(key_file: str | Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(Path(key_file).read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def token_signed_by(
    key: Ed25519PrivateKey, sub: str, *, ttl: float = 900, kid: str | None = None
) -> str:
    """An EdDSA access token signed by `key` (`kid` defaults to that key's own)."""
    header = {"alg": "EdDSA", "typ": "JWT", "kid": kid or public_jwk(key.public_key())["kid"]}
    return encode(header, access_claims(sub, ttl=ttl), key.sign)


def unsigned_token(sub: str, kid: str) -> str:
    return encode({"alg": "none", "typ": "JWT", "kid": kid}, access_claims(sub), None)


# --- looking at what is stored and logged -----------------------------------------------------


@dataclass
class LogWatch:
    """Remembers where each service's log stood, to check only what was written since.

    `processes` is the stack's live list: a process started after `mark()` is read whole.
    """

    processes: list[ServiceProcess]
    offsets: dict[int, int] = field(default_factory=dict)

    def mark(self) -> LogWatch:
        self.offsets = {id(p): len(p.log_text()) for p in self.processes}
        return self

    def problems(self, *, errors_too: bool = True) -> list[str]:
        found = []
        for process in self.processes:
            new = process.log_text()[self.offsets.get(id(process), 0) :]
            found += [
                f"{process.script}:{process.port}: {line}"
                for line in log_problems(new, errors_too=errors_too)
            ]
        return found


def sorted_seqs(messages: Iterable[dict[str, Any]]) -> list[int]:
    return sorted(m["seq"] for m in messages)
