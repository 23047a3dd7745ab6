"""What the browser tests do as a person would: one `Client` per person and browser context."""

from __future__ import annotations

import json
import re
import struct
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Locator, Page, WebSocketRoute, expect

from chat_testkit.api import PASSWORD

DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


class Client:
    """One person using the web client in their own browser context."""

    def __init__(self, context: BrowserContext, page: Page, base_url: str, shots: Path, name: str):
        self.context = context
        self.page = page
        self.base_url = base_url
        self.shots = shots
        self.name = name
        self.errors: list[str] = []
        self._shot = 0
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    @classmethod
    async def open(
        cls,
        browser: Browser,
        base_url: str,
        shots: Path,
        name: str,
        device: dict,
        socket_route: Callable[[WebSocketRoute], Any] | None = None,
    ) -> Client:
        context = await browser.new_context(base_url=base_url, **device)
        if socket_route is not None:
            await context.route_web_socket(re.compile(r"/socket\.io/"), socket_route)
        page = await context.new_page()
        page.set_default_timeout(15_000)
        client = cls(context, page, base_url, shots, name)
        await page.goto("/")
        return client

    async def screenshot(self, label: str) -> Path:
        self._shot += 1
        path = self.shots / f"{self._shot:02d}-{self.name}-{label}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def register(self, username: str, display_name: str, password: str = PASSWORD) -> None:
        page = self.page
        await expect(page.get_by_test_id("auth-form")).to_be_visible()
        await page.get_by_test_id("auth-tab-register").click()
        await page.get_by_test_id("auth-username").fill(username)
        await page.get_by_test_id("auth-display-name").fill(display_name)
        await page.get_by_test_id("auth-password").fill(password)
        await page.get_by_test_id("auth-submit").click()
        await expect(page.get_by_test_id("current-user")).to_contain_text(display_name)
        await self.expect_connected()

    async def login(self, username: str, password: str = PASSWORD) -> None:
        page = self.page
        await page.get_by_test_id("auth-tab-login").click()
        await page.get_by_test_id("auth-username").fill(username)
        await page.get_by_test_id("auth-password").fill(password)
        await page.get_by_test_id("auth-submit").click()

    async def expect_connected(self, timeout: float = 15_000) -> None:
        await expect(self.page.get_by_test_id("connection-banner")).to_have_attribute(
            "data-state", "connected", timeout=timeout
        )

    def conversation(self, title: str) -> Locator:
        return self.page.get_by_test_id("conversation-item").filter(
            has=self.page.get_by_test_id("conversation-title").filter(has_text=title)
        )

    def messages(self) -> Locator:
        return self.page.get_by_test_id("message-list").get_by_test_id("message")

    def message(self, text: str) -> Locator:
        return self.messages().filter(has_text=text)

    async def send(self, text: str) -> None:
        box = self.page.get_by_test_id("message-input")
        await box.fill(text)
        await box.press("Enter")
        await expect(box).to_have_value("")

    async def close(self) -> None:
        await self.context.close()


def unique_username(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def make_png(width: int = 120, height: int = 80) -> bytes:
    """A small gradient PNG, made here so the test needs no image files."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            row += bytes((60 + x * 150 // width, 80 + y * 120 // height, 210))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


OpenClient = Callable[..., Awaitable[Client]]


@dataclass
class SocketTap:
    """Sits on a page's Socket.IO WebSocket: spoils the next `message:send`, holds back events.

    `fail_next()`: the send never reaches the server and the page gets an
    `unavailable` acknowledgement. `lose_next_ack()`: the send reaches the
    server, but the page gets an `unavailable` acknowledgement first, as if
    the real one were lost. `time_out_next(stored=...)`: the page gets a
    `timeout` acknowledgement, the send having reached the server or not.
    `hold_back(event)`: from then on the server's `event` frames never reach
    the page, as if live delivery had failed. Records every send's
    client_msg_id, every event the server pushed (held back or not), and how
    many connections the page opened.
    """

    client_msg_ids: list[str] = field(default_factory=list)
    server_events: list[tuple[str, Any]] = field(default_factory=list)
    held_back: set[str] = field(default_factory=set)
    connections: int = 0
    _next_send: tuple[str, bool] | None = None  # (error code answered, forwarded to the server)

    def fail_next(self) -> None:
        self._next_send = ("unavailable", False)

    def lose_next_ack(self) -> None:
        self._next_send = ("unavailable", True)

    def time_out_next(self, *, stored: bool) -> None:
        self._next_send = ("timeout", stored)

    def hold_back(self, event: str) -> None:
        self.held_back.add(event)

    def release(self) -> None:
        self.held_back.clear()

    def pushed(self, event: str) -> list[Any]:
        """Payloads of the server's `event` frames so far."""
        return [payload for name, payload in self.server_events if name == event]

    def route(self, ws: WebSocketRoute) -> None:
        self.connections += 1
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            event = _socketio_event(message)
            if event is not None and event[1] == "message:send":
                ack_id, _, payload = event
                self.client_msg_ids.append(payload["client_msg_id"])
                spoiled, self._next_send = self._next_send, None
                if spoiled is not None:
                    code, forwarded = spoiled
                    error = {"code": code, "message": f"Spoiled by the test ({code})."}
                    ws.send(f"43{ack_id}" + json.dumps([{"ok": False, "error": error}]))
                    if not forwarded:
                        return
            server.send(message)

        def from_server(message: str | bytes) -> None:
            event = _socketio_push(message)
            if event is not None:
                self.server_events.append(event)
                if event[0] in self.held_back:
                    return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


def _socketio_event(message: str | bytes) -> tuple[str, str, dict[str, Any]] | None:
    """(ack id, event, payload) of a Socket.IO EVENT frame with an ack, else None."""
    if not isinstance(message, str):
        return None
    match = re.match(r"42(\d+)(\[.*)", message, re.DOTALL)
    if match is None:
        return None
    event, payload, *_ = json.loads(match.group(2))
    return match.group(1), event, payload


def _socketio_push(message: str | bytes) -> tuple[str, Any] | None:
    """(event, payload) of a Socket.IO EVENT frame the server pushed, else None."""
    if not isinstance(message, str):
        return None
    match = re.match(r"42(\[.*)", message, re.DOTALL)
    if match is None:
        return None
    event, *args = json.loads(match.group(1))
    return event, args[0] if args else None
