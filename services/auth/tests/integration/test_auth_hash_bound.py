"""Password hashing on a real chat-auth runs under its bound: beyond it, 503 at once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable

import httpx

from chat_testkit import ServiceProcess
from chat_testkit.contract import assert_error

PASSWORD = "correct horse battery"


async def test_registrations_beyond_the_bound_are_answered_unavailable(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service("chat-auth", MAX_CONCURRENT_HASHES="1")
    assert '"concurrent_hashes": 1' in service.log_text()
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as api:

        async def register() -> httpx.Response:
            body = {"username": f"h{uuid.uuid4().hex[:12]}", "password": PASSWORD}
            return await api.post("/v1/auth/register", json=body)

        answers = await asyncio.gather(*(register() for _ in range(12)))
        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) == {201, 503}, statuses
        for answer in answers:
            if answer.status_code == 503:
                error = assert_error(answer, 503, "unavailable")
                assert error["details"] == {"retry_after": 1}
                assert answer.headers["Retry-After"] == "1"
        # Refused, not queued: once the burst is over a registration goes through.
        assert (await register()).status_code == 201
    assert "Traceback" not in service.log_text()
