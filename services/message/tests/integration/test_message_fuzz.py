"""Schemathesis over the message service's OpenAPI, against the real process with a real token.

Whatever it generates, the service answers with the contract's errors: no 5xx, and
(`service_log_clean`) no traceback in its log. Examples per operation are bounded so
that the whole run stays within seconds.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi

pytestmark = pytest.mark.usefixtures("service_log_clean")

EXAMPLES_PER_OPERATION = 8


async def test_no_generated_request_gets_a_5xx(
    api: ChatApi, message_service: ServiceProcess
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    await api.sent(alice, cid, "seed")
    schema = schemathesis.openapi.from_url(f"{message_service.url}/openapi.json")
    headers = alice.headers
    failures: list[str] = []
    operations = 0

    for result in schema.get_all_operations():
        # An operation the schema cannot describe is a failure of its own.
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(), real_id=st.booleans())
        def check(case: Any, real_id: bool) -> None:
            # Half the cases aim at a conversation the caller is in, to get past the 404.
            if real_id and case.path_parameters and "conversation_id" in case.path_parameters:
                case.path_parameters["conversation_id"] = cid
            response = case.call(base_url=message_service.url, headers=headers, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        check()

    assert operations >= 10
    assert not failures, failures
