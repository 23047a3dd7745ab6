"""A lean Socket.IO client: Engine.IO v4 / Socket.IO v5 over one WebSocket, nothing else.

python-socketio's AsyncClient costs an aiohttp session and several tasks per
connection; thousands of devices from one process would measure the client.
This one is an asyncio Protocol around websockets' Sans-I/O state machine:
no task per connection, writes never wait, and an incoming frame is handed
to its owner as the raw packet text, which parses only what it needs.

Packets (each WebSocket text frame is one Engine.IO packet):
  server `0{...}` open            -> client `40{"token": ...}` connects namespace `/`
  server `40{"sid": ...}`         namespace connected; `44{...}` connect_error
  server `2` ping                 -> client `3` pong
  `42["event", payload]`          an event; `42<id>[...]` one that wants an ack
  server `43<id>[data]`           the answer to the client's event <id>
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlparse

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri


class ConnectFailed(Exception):
    """The connection or the namespace connect was refused; `code` says why."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


EventHandler = Callable[[str], None]
AckHandler = Callable[[int, str], None]
CloseHandler = Callable[["SocketClient"], None]


def socketio_url(base: str) -> str:
    """ws://host:port/socket.io/?EIO=4&transport=websocket from a gateway's http URL."""
    parsed = urlparse(base)
    scheme = "wss" if parsed.scheme in ("https", "wss") else "ws"
    return f"{scheme}://{parsed.netloc}/socket.io/?EIO=4&transport=websocket"


class SocketClient(asyncio.Protocol):
    """One Socket.IO connection. `open()` returns once the namespace is connected.

    `on_event(packet)` gets every `42...` packet text as is, `on_ack(id, data)`
    the JSON array text of an acknowledgement, `on_close(client)` is called once
    when the connection ends for any reason after it was opened.
    """

    def __init__(
        self,
        url: str,
        token: str,
        on_event: EventHandler,
        on_ack: AckHandler,
        on_close: CloseHandler,
    ) -> None:
        self.url = url
        self.token = token
        self.on_event = on_event
        self.on_ack = on_ack
        self.on_close = on_close
        self.ws = ClientProtocol(parse_uri(url), max_size=16 * 1024 * 1024)
        self.transport: asyncio.Transport | None = None
        self.connected = False
        self.closed = False
        self.sid = ""
        self._next_ack = 0
        self._opened: asyncio.Future[None] | None = None

    # --- opening --------------------------------------------------------------------------

    async def open(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._opened = loop.create_future()
        parsed = urlparse(self.url)
        try:
            async with asyncio.timeout(timeout):
                await loop.create_connection(
                    lambda: self, parsed.hostname or "127.0.0.1", parsed.port or 80
                )
                await self._opened
        except TimeoutError:
            self.abort()
            raise ConnectFailed("connect_timeout") from None
        except OSError as exc:
            self.abort()
            raise ConnectFailed("connect_refused", str(exc)) from None
        except ConnectFailed:
            self.abort()
            raise

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.ws.send_request(self.ws.connect())
        self._flush()

    def _fail_open(self, code: str, message: str = "") -> None:
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(ConnectFailed(code, message))

    # --- receiving --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                if event.opcode is Opcode.TEXT:
                    self._packet(bytes(event.data).decode())
                elif event.opcode is Opcode.CLOSE:
                    self._flush()
                    self.abort()
                    return
            elif isinstance(event, Response) and ws.handshake_exc is not None:
                self._fail_open("handshake_failed", str(ws.handshake_exc))
        self._flush()

    def _packet(self, text: str) -> None:
        kind = text[:2]
        if kind == "42":
            self.on_event(text)
        elif kind == "43":
            end = 2
            while end < len(text) and text[end].isdigit():
                end += 1
            self.on_ack(int(text[2:end]), text[end:])
        elif text == "2":
            self.send_packet("3")
        elif text[0] == "0":
            # Engine.IO open: connect the default namespace with the access token.
            self.send_packet("40" + json.dumps({"token": self.token}))
        elif kind == "40":
            self.connected = True
            self.sid = json.loads(text[2:]).get("sid", "") if len(text) > 2 else ""
            if self._opened is not None and not self._opened.done():
                self._opened.set_result(None)
        elif kind == "44":
            code, message = "connect_error", ""
            try:
                data = json.loads(text[2:])
                error = (data.get("data") or {}).get("error") or {}
                code = str(error.get("code") or data.get("message") or code)
                message = str(error.get("message") or "")
            except (ValueError, AttributeError):
                pass
            self._fail_open(code, message)
            self.abort()
        elif kind == "41" or text[0] == "1":
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        was_connected = self.connected
        self.connected = False
        if self.closed:
            return
        self.closed = True
        self._fail_open("connection_lost", str(exc or "closed by the server"))
        if was_connected:
            self.on_close(self)

    # --- sending ------------------------------------------------------------------------------

    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)

    def send_packet(self, text: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.ws.send_text(text.encode())
        self._flush()

    def emit(self, event: str, payload: Any) -> int:
        """Send an event that wants an acknowledgement; returns the ack id to wait for."""
        ack = self._next_ack
        self._next_ack += 1
        self.send_packet(f"42{ack}" + json.dumps([event, payload], separators=(",", ":")))
        return ack

    def write_buffer(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport else 0

    def abort(self) -> None:
        """Drop the connection at once (a vanished device); `on_close` follows if it was open."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()

    def close(self) -> None:
        """Leave politely: no `on_close` callback, as this is the owner's own doing."""
        self.closed = True
        self.connected = False
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.ws.send_close()
                self._flush()
            finally:
                self.transport.close()
