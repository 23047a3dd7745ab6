"""Browser tests: the real services as processes, and Debian's Chromium driven by Playwright.

The stack is the test kit's (`chat_testkit.stack`): auth, message and two
gateways on free ports, the gateways' origins allowed by CORS on auth and
message, so a page served by either gateway calls them directly, as in `make dev`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from browser_support import Client, OpenClient
from playwright.async_api import Browser, async_playwright

from chat_testkit import ChatApi, Stack

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VENDOR_FILE = ROOT / "services/gateway/src/chat_gateway/static/vendor/socket.io.min.js"
BUILD_WEB = ROOT / "deploy/scripts/build-web.sh"
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture(scope="session")
def web_client_built() -> Path:
    """The vendored socket.io-client; built from npm (`make web`) when missing."""
    if not VENDOR_FILE.exists():
        result = subprocess.run([str(BUILD_WEB)], capture_output=True, text=True, check=False)
        if result.returncode != 0 or not VENDOR_FILE.exists():
            pytest.fail(
                f"could not build the web client's library (run `make web`; needs npm):\n"
                f"{result.stdout}\n{result.stderr}",
                pytrace=False,
            )
    return VENDOR_FILE


@pytest.fixture
def stack_settings() -> dict[str, dict[str, str]]:
    """Extra environment per service ("auth", "message", "gateway"); parametrize to change."""
    return {}


@pytest.fixture
def chat_stack(
    start_stack: Callable[..., Stack],
    stack_settings: dict[str, dict[str, str]],
    web_client_built: Path,
) -> Stack:
    """Auth, message and two gateways, stopped after the test."""
    return start_stack(extra=stack_settings)


@pytest_asyncio.fixture
async def api(chat_stack: Stack) -> AsyncIterator[ChatApi]:
    """The stack's REST API, for what a test sets up without a browser."""
    async with ChatApi.open(
        auth_url=chat_stack.auth.url, message_url=chat_stack.message.url
    ) as api:
        yield api


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; the tests never download a browser."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: apt-get install chromium", pytrace=False)
    return CHROMIUM


@pytest_asyncio.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/browser/<test name>/ for screenshots (git-ignored)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder = ARTIFACTS / name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


@pytest_asyncio.fixture
async def open_client(browser: Browser, artifacts: Path) -> AsyncIterator[OpenClient]:
    """`await open_client(base_url, name, device)`: a fresh browser context on the web client.

    `socket_route=` puts a handler on the page's Socket.IO WebSocket (see SocketTap).
    """
    clients: list[Client] = []

    async def open_one(base_url: str, name: str, device: dict, **options: Any) -> Client:
        client = await Client.open(browser, base_url, artifacts, name, device, **options)
        clients.append(client)
        return client

    yield open_one
    for client in clients:
        await client.close()
