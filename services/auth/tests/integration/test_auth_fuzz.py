"""Schemathesis over the auth service's OpenAPI, against the real process with a real token.

Whatever it generates, auth answers with the contract's errors: no 5xx and no
traceback in its log. Examples per operation are bounded so that the run stays
within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.result import Err

from chat_testkit import ServiceProcess
from chat_testkit.process import log_problems

EXAMPLES_PER_OPERATION = 8


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
    schema = schemathesis.openapi.from_url(f"{auth.url}/openapi.json")
    failures: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the schema has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), real_id=st.booleans())
        def check(case: Any, real_id: bool) -> None:
            # Half the cases aim at a user who exists, to get past the 404.
            if real_id and case.path_parameters and "user_id" in case.path_parameters:
                case.path_parameters["user_id"] = other["user"]["id"]
            response = case.call(base_url=auth.url, headers=headers, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()

    assert operations >= 8
    assert not failures, failures
    problems = log_problems(auth.log_text())
    assert not problems, "\n".join(problems)
