"""The official JavaScript client (socket.io-client 4.x) works with the gateway unmodified.

Starts auth, message and two gateways, then runs `js/client.mjs` under Node:
Alice on one gateway sends, Bob on the other receives and syncs. The library
comes from the web client's npm project (services/gateway/npm); when its
node_modules is missing it is installed from the lock file, so this runs the
same from a fresh clone. No Node or npm is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chat_testkit import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]
NPM_PROJECT = ROOT / "services" / "gateway" / "npm"
CLIENT_SCRIPT = Path(__file__).parent / "js" / "client.mjs"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def socketio_client_library(node: str) -> Path:
    """services/gateway/npm/node_modules with socket.io-client, installed if missing."""
    package = NPM_PROJECT / "node_modules" / "socket.io-client" / "package.json"
    if not package.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                f"{package} is missing and npm is not installed to fetch it "
                "(apt-get install npm, then `npm ci --prefix services/gateway/npm`)",
                False,
            )
        locked = (NPM_PROJECT / "package-lock.json").exists()
        command = [npm, "ci" if locked else "install", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=NPM_PROJECT, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    version = json.loads(package.read_text())["version"]
    assert version.startswith("4."), f"socket.io-client {version} is not 4.x"
    return package.parent


@pytest.fixture(scope="module")
def stack(
    start_module_service: Callable[..., ServiceProcess],
    module_service_env: dict[str, str],
) -> Iterator[tuple[ServiceProcess, ServiceProcess, ServiceProcess, ServiceProcess]]:
    auth = start_module_service("chat-auth")
    message = start_module_service("chat-message", AUTH_URL=auth.url)
    gateway_a = start_module_service("chat-gateway", AUTH_URL=auth.url)
    gateway_b = start_module_service("chat-gateway", AUTH_URL=auth.url)
    processes = (auth, message, gateway_a, gateway_b)
    yield processes
    for process in reversed(processes):
        code = process.stop(timeout=15)
        if process.script == "chat-gateway":  # drains on SIGTERM, then exits cleanly
            assert code == 0, process.log_text()[-3000:]
        assert "Traceback" not in process.log_text(), process.log_text()[-3000:]


def register(http: httpx.Client, auth_url: str) -> dict[str, Any]:
    username = f"js{uuid.uuid4().hex[:10]}"
    response = http.post(
        f"{auth_url}/v1/auth/register", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_official_js_client_sends_receives_and_syncs_across_gateways(
    node: str,
    socketio_client_library: Path,
    stack: tuple[ServiceProcess, ServiceProcess, ServiceProcess, ServiceProcess],
) -> None:
    auth, message, gateway_a, gateway_b = stack
    with httpx.Client(timeout=30) as http:
        alice, bob = register(http, auth.url), register(http, auth.url)
        response = http.post(
            f"{message.url}/v1/conversations",
            json={"type": "direct", "member_ids": [bob["user"]["id"]]},
            headers={"Authorization": f"Bearer {alice['access_token']}"},
        )
        assert response.status_code == 201, response.text
        cid = response.json()["id"]

        run = subprocess.run(
            [node, str(CLIENT_SCRIPT)],
            env={
                **os.environ,
                "NPM_PROJECT": str(NPM_PROJECT),
                "GATEWAY_A": gateway_a.url,
                "GATEWAY_B": gateway_b.url,
                "TOKEN_A": alice["access_token"],
                "TOKEN_B": bob["access_token"],
                "CONVERSATION_ID": cid,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, f"node exited {run.returncode}:\n{run.stderr}\n{run.stdout}"
        result = json.loads(run.stdout)

        history = http.get(
            f"{message.url}/v1/conversations/{cid}/messages",
            params={"after_seq": 0},
            headers={"Authorization": f"Bearer {bob['access_token']}"},
        ).json()["items"]

    assert result["client_version"].startswith("4.")
    # The defaults: long-polling first, then the upgrade to WebSocket.
    assert result["first_transport"] == {"alice": "polling", "bob": "polling"}
    assert result["transports"] == {"alice": "websocket", "bob": "websocket"}

    refused = result["refused"]
    assert refused["message"] == "unauthorized", refused
    assert refused["data"]["error"]["code"] == "unauthorized", refused

    ack = result["ack"]
    assert ack["ok"] is True, ack
    sent = ack["message"]
    assert sent["text"] == "hello from node"
    assert sent["sender_id"] == alice["user"]["id"]
    assert sent["conversation_id"] == cid
    assert sent["seq"] == 1
    # Bob, on the other gateway, and Alice's own connection get the stored message as is.
    assert result["received"] == sent
    assert result["echoed"] == sent
    # The same client_msg_id again is the same message, not a second one.
    assert result["retried"] == {"ok": True, "message": sent}
    assert [m["id"] for m in history] == [sent["id"]]

    sync = result["sync"]
    assert sync["ok"] is True, sync
    (entry,) = [c for c in sync["conversations"] if c["conversation"]["id"] == cid]
    assert entry["messages"] == [sent]

    assert result["bad"]["ok"] is False
    assert result["bad"]["error"]["code"] == "validation_error", result["bad"]
    assert result["unknown"]["ok"] is False
    assert result["unknown"]["error"]["code"] == "not_found", result["unknown"]
    assert result["presence"]["presence"][alice["user"]["id"]]["online"] is True
