"""Schemathesis over the auth service's OpenAPI, against the real process with a real token.

Whatever it generates, auth answers with the contract's errors: no 5xx and no
traceback in its log. Examples per operation are bounded so that the run stays
within seconds.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from chat_testkit import ServiceProcess
from chat_testkit.fuzz import server_errors_of_generated_requests
from chat_testkit.process import log_problems


def test_no_generated_request_gets_a_5xx_or_a_traceback(
    start_service: Callable[..., ServiceProcess],
) -> None:
    # Generous budgets: the fuzzer must reach the handlers, not the throttle.
    auth = start_service(
        "chat-auth",
        LOGIN_FAILURES_PER_ADDRESS="100000",
        LOGIN_FAILURES_PER_USERNAME="100000",
        RATE_REGISTER="1000/100000",
        RATE_LOGIN="1000/100000",
        RATE_OTHER="1000/100000",
    )
    registered = httpx.post(
        f"{auth.url}/v1/auth/register",
        json={"username": "fuzzer", "password": "correct horse battery"},
        timeout=10,
    ).json()
    other = httpx.post(
        f"{auth.url}/v1/auth/register",
        json={"username": "target", "password": "correct horse battery"},
        timeout=10,
    ).json()
    headers = {"Authorization": f"Bearer {registered['access_token']}"}
    operations, failures = server_errors_of_generated_requests(
        auth.url, headers, aim={"user_id": other["user"]["id"]}
    )
    assert operations >= 8
    assert not failures, failures
    problems = log_problems(auth.log_text())
    assert not problems, "\n".join(problems)
