"""Per-user budgets on REST writes and expensive reads, on the same Redis buckets as the socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import pytest_asyncio

from chat_platform.ratelimit import Budgets, Rate, TokenBuckets
from chat_platform.redis_client import create_redis
from chat_testkit.api import ChatApi, User
from chat_testkit.stored import Stored

pytestmark = pytest.mark.usefixtures("service_log_clean")

SEND_RATE, SEND_BURST = 20, 60
# Budgets that do not refill within a test: the fourth call is refused.
SMALL_BURST = 3
SMALL = f"0.01/{SMALL_BURST}"


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    env = {"RATE_SEND": f"{SEND_RATE}/{SEND_BURST}"}
    for action in ("CREATE_CONVERSATION", "HISTORY", "EDIT", "MEMBERS"):
        env[f"RATE_{action}"] = SMALL
    return env


@pytest_asyncio.fixture
async def socket_budgets(module_service_env: dict[str, str]) -> AsyncIterator[Budgets]:
    """Budgets as a gateway of the same deployment builds them (the namespace's `rate` keys)."""
    redis = create_redis(module_service_env["REDIS_URL"])
    buckets = TokenBuckets(redis, f"{module_service_env['NAMESPACE']}:rate")
    yield Budgets(buckets, {"message:send": Rate(SEND_RATE, SEND_BURST)}, Rate(1000, 1000))
    await redis.aclose()


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["retry_after"] >= 1
    assert response.headers["Retry-After"] == str(error["details"]["retry_after"])


async def test_a_burst_of_300_rest_sends_is_cut_at_the_budget(api: ChatApi, stored: Stored) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    started = time.monotonic()
    responses = await asyncio.gather(*(api.send(alice, cid, f"n{i}") for i in range(300)))
    elapsed = time.monotonic() - started
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 429}, statuses
    accepted = statuses.count(201)
    assert SEND_BURST <= accepted <= SEND_BURST + SEND_RATE * elapsed + 1, (accepted, elapsed)
    for response in responses:
        if response.status_code == 429:
            assert_rate_limited(response)
    # Nothing beyond the budget was stored.
    assert stored.messages(conversation_id=cid) == accepted
    # Another user's budget is untouched.
    await api.sent(bob, cid, "bob still writes")


async def test_rest_sends_share_the_sockets_bucket(
    api: ChatApi, socket_budgets: Budgets, stored: Stored
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    # The socket spends alice's whole send budget...
    await socket_budgets.spend(alice.id, "message:send", cost=SEND_BURST)
    # ...and REST has nothing left of it.
    assert_rate_limited(await api.send(alice, cid, "over REST"))
    assert stored.messages(conversation_id=cid) == 0


Call = Callable[[ChatApi, User, dict[str, str]], Awaitable[httpx.Response]]


async def _create(api: ChatApi, user: User, ids: dict[str, str]) -> httpx.Response:
    body = {"type": "group", "title": "g", "member_ids": [ids["bob"]]}
    return await api.post(user, "/v1/conversations", json=body)


async def _history(api: ChatApi, user: User, ids: dict[str, str]) -> httpx.Response:
    return await api.get(user, f"/v1/conversations/{ids['cid']}/messages")


async def _edit(api: ChatApi, user: User, ids: dict[str, str]) -> httpx.Response:
    path = f"/v1/conversations/{ids['cid']}/messages/{ids['mid']}"
    return await api.patch(user, path, json={"text": "edited"})


async def _add(api: ChatApi, user: User, ids: dict[str, str]) -> httpx.Response:
    path = f"/v1/conversations/{ids['group']}/members"
    return await api.post(user, path, json={"user_ids": [ids["bob"]]})


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(_create, id="conversation:create"),
        pytest.param(_history, id="messages:history"),
        pytest.param(_edit, id="message:edit"),
        pytest.param(_add, id="conversation:members"),
    ],
)
async def test_each_action_has_a_budget_of_its_own(api: ChatApi, call: Call) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    mid = (await api.sent(alice, cid))["id"]
    group = (
        await api.post(
            alice, "/v1/conversations", json={"type": "group", "title": "g", "member_ids": []}
        )
    ).json()["id"]
    ids = {"bob": bob.id, "cid": cid, "mid": mid, "group": group}
    # The two conversations above spent two conversation:create of three.
    allowed = SMALL_BURST - (2 if call is _create else 0)
    for _ in range(allowed):
        response = await call(api, alice, ids)
        assert response.status_code < 400, response.text
    assert_rate_limited(await call(api, alice, ids))
    # Other actions are not charged for it.
    await api.sent(alice, cid, "still sending")
