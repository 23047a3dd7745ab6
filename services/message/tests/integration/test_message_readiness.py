"""The message service is ready only when it could serve: its database, broker and token keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from chat_testkit import ServiceProcess, free_port
from chat_testkit.amqp import remove_service_namespace


def readiness(service: ServiceProcess) -> httpx.Response:
    return httpx.get(f"{service.url}/readyz", timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def test_not_ready_without_the_token_keys_and_ready_once_they_can_be_fetched(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    auth_port = free_port()
    env = {**service_env, "AUTH_URL": f"http://127.0.0.1:{auth_port}"}
    # Alive is all it can be without the auth service: wait for that, not for ready.
    message = ServiceProcess("chat-message", env, tmp_path, ready_path="/healthz")
    auth = ServiceProcess("chat-auth", service_env, tmp_path, port=auth_port)
    try:
        message.start()
        response = readiness(message)
        assert response.status_code == 503
        assert "jwks" in response.json()["error"]["details"]["failing"]
        # Every authenticated request would be refused meanwhile: that is why it is not ready.
        refused = httpx.get(
            f"{message.url}/v1/conversations", headers={"Authorization": "Bearer x"}, timeout=5
        )
        assert refused.status_code == 401

        auth.start()
        wait_for(
            lambda: readiness(message).status_code == 200,
            timeout=30,
            message="the message service did not become ready once the JWKS could be fetched",
        )
    finally:
        message.stop()
        auth.stop()
        remove_service_namespace(service_env["AMQP_URL"], service_env["NAMESPACE"])
