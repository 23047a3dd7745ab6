"""Schemathesis over the message service's OpenAPI, against the real process with a real token.

Whatever it generates, the service answers with the contract's errors: no 5xx, and
(`service_log_clean`) no traceback in its log. Examples per operation are bounded so
that the whole run stays within seconds.
"""

from __future__ import annotations

import pytest

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi
from chat_testkit.fuzz import server_errors_of_generated_requests

pytestmark = pytest.mark.usefixtures("service_log_clean")


async def test_no_generated_request_gets_a_5xx(
    api: ChatApi, message_service: ServiceProcess
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    await api.sent(alice, cid, "seed")
    operations, failures = server_errors_of_generated_requests(
        message_service.url, alice.headers, aim={"conversation_id": cid}
    )
    assert operations >= 10
    assert not failures, failures
