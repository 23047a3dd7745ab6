"""The repository's nginx configuration, run for real in front of the services.

Debian's nginx serves the rendered deploy/nginx/chat.conf.template on a free
loopback port, in front of auth, message and two gateways started as
processes. A chat then happens only through nginx: REST routed by path, the
web client, and Socket.IO over an upgraded WebSocket, with the two users
landing on different gateways.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import socketio
from nginx_template import render, standalone_config
from system_commands import system_command

from chat_testkit import ServiceProcess, eventually, free_port, port_open


@pytest.fixture(scope="module")
def stack(start_module_service: Callable[..., ServiceProcess]) -> dict[str, ServiceProcess]:
    auth = start_module_service("chat-auth")
    message = start_module_service("chat-message", AUTH_URL=auth.url)
    gateways = [start_module_service("chat-gateway", AUTH_URL=auth.url) for _ in range(2)]
    return {"auth": auth, "message": message, "gw1": gateways[0], "gw2": gateways[1]}


@pytest.fixture(scope="module")
def nginx(
    stack: dict[str, ServiceProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    exe = system_command("nginx", "nginx", "these tests run it in front of two gateways")
    prefix = tmp_path_factory.mktemp("nginx")
    port = free_port()
    snippet = render(
        listen=f"127.0.0.1:{port}",
        auth=[f"127.0.0.1:{stack['auth'].port}"],
        message=[f"127.0.0.1:{stack['message'].port}"],
        gateways=[f"127.0.0.1:{stack['gw1'].port}", f"127.0.0.1:{stack['gw2'].port}"],
        # All test clients share 127.0.0.1, so ip_hash would pin them to one gateway;
        # the clients use the websocket transport only, which needs no stickiness.
        gateway_balance="",
    )
    config = prefix / "nginx.conf"
    config.write_text(standalone_config(snippet, prefix))
    check = subprocess.run(
        [exe, "-t", "-p", str(prefix), "-c", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [exe, "-p", str(prefix), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(10)


async def _register(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    response = await client.post(
        f"{base}/v1/auth/register",
        json={"username": f"lb{uuid.uuid4().hex[:10]}", "password": "through the balancer"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_rest_is_routed_by_path(nginx: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        session = await _register(client, nginx)
        headers = {"Authorization": f"Bearer {session['access_token']}"}
        assert (await client.get(f"{nginx}/.well-known/jwks.json")).json()["keys"]
        me = await client.get(f"{nginx}/v1/users/me", headers=headers)
        assert me.json()["id"] == session["user"]["id"]
        listing = await client.get(f"{nginx}/v1/conversations", headers=headers)
        assert listing.status_code == 200
        assert listing.json()["items"] == []
        page = await client.get(f"{nginx}/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        config = await client.get(f"{nginx}/config.json")
        assert config.json() == {"auth_url": "", "message_url": ""}
        assert (await client.get(f"{nginx}/metrics")).status_code == 404


async def test_a_chat_works_through_the_balancer(
    nginx: str, stack: dict[str, ServiceProcess]
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        alice, bob = await _register(client, nginx), await _register(client, nginx)
        created = await client.post(
            f"{nginx}/v1/conversations",
            json={"type": "direct", "member_ids": [bob["user"]["id"]]},
            headers={"Authorization": f"Bearer {alice['access_token']}"},
        )
        assert created.status_code == 201, created.text
        conversation_id = created.json()["id"]

    received: dict[str, list[dict[str, Any]]] = {"alice": [], "bob": []}
    clients = {name: socketio.AsyncClient(reconnection=False) for name in received}
    for name, sio in clients.items():
        sio.on("message:new", lambda m, name=name: received[name].append(m))
    try:
        for name, session in (("alice", alice), ("bob", bob)):
            await clients[name].connect(
                nginx, auth={"token": session["access_token"]}, transports=["websocket"]
            )
            assert clients[name].transport() == "websocket"
        ack = await clients["alice"].call(
            "message:send",
            {"conversation_id": conversation_id, "client_msg_id": "via-lb", "text": "hello"},
            timeout=10,
        )
        assert ack["ok"], ack
        await eventually(lambda: received["bob"] and received["alice"], timeout=10)
        assert [m["text"] for m in received["bob"]] == ["hello"]
        assert received["alice"][0]["id"] == ack["message"]["id"]
        # Round robin put the two sockets on different gateways: delivery crossed instances.
        counts = [await _connections(stack[g].url) for g in ("gw1", "gw2")]
        assert counts == [1, 1], counts
    finally:
        for sio in clients.values():
            await sio.disconnect()
        await asyncio.sleep(0)


async def _connections(gateway_url: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"{gateway_url}/metrics")).text
    for line in metrics.splitlines():
        if line.startswith("chat_gateway_connections "):
            return int(float(line.split()[1]))
    raise AssertionError("chat_gateway_connections not exported")
