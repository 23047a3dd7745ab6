"""Blocks and settings (CONTRACT §7.2, §7.5) on a real chat-auth: stored, listed, published."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aio_pika
import httpx
import pytest_asyncio

from chat_contracts import Envelope, UserBlocked, UserSettingsChanged, UserUnblocked
from chat_testkit import ServiceProcess
from chat_testkit.amqp import Rabbit
from chat_testkit.contract import assert_error

PASSWORD = "correct horse battery"
DEFAULTS = {
    "presence_visible_to": "contacts",
    "group_invites_from": "everyone",
    "push_previews": True,
}


async def new_user(api: httpx.AsyncClient) -> dict[str, Any]:
    name = f"p{uuid.uuid4().hex[:12]}"
    response = await api.post("/v1/auth/register", json={"username": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    return {**body["user"], "headers": {"Authorization": f"Bearer {body['access_token']}"}}


@pytest_asyncio.fixture
async def events(auth_service: ServiceProcess, amqp_url: str) -> AsyncIterator[Any]:
    """Every privacy event auth publishes from now on, as a function that awaits the next one."""
    connection = await aio_pika.connect_robust(amqp_url)
    rabbit = Rabbit(connection, auth_service.env["NAMESPACE"])
    queue = await rabbit.watch("user.blocked", "user.unblocked", "user.settings_changed")

    async def next_event() -> Any:
        message = await rabbit.get_from(queue, timeout=10)
        return Envelope.model_validate_json(message.body).unwrap()

    next_event.queue = queue  # type: ignore[attr-defined]
    yield next_event
    await connection.close()


async def nothing_more(events: Any) -> None:
    await asyncio.sleep(0.3)
    assert await events.queue.get(no_ack=True, fail=False) is None


async def test_block_is_stored_listed_and_published_once(
    api: httpx.AsyncClient, events: Any
) -> None:
    alice, bob = await new_user(api), await new_user(api)
    for _ in range(2):  # idempotent: the second PUT changes nothing and publishes nothing
        response = await api.put(f"/v1/users/me/blocks/{bob['id']}", headers=alice["headers"])
        assert response.status_code == 204, response.text
        assert response.content == b""
    assert await events() == UserBlocked(blocker_id=alice["id"], blocked_id=bob["id"])
    await nothing_more(events)

    listed = await api.get("/v1/users/me/blocks", headers=alice["headers"])
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "items": [{k: bob[k] for k in ("id", "username", "display_name", "created_at")}],
        "next_cursor": None,
    }
    # Blocks are one-way: Bob blocked nobody.
    assert (await api.get("/v1/users/me/blocks", headers=bob["headers"])).json()["items"] == []

    for _ in range(2):
        response = await api.delete(f"/v1/users/me/blocks/{bob['id']}", headers=alice["headers"])
        assert response.status_code == 204, response.text
    assert await events() == UserUnblocked(blocker_id=alice["id"], blocked_id=bob["id"])
    await nothing_more(events)
    assert (await api.get("/v1/users/me/blocks", headers=alice["headers"])).json()["items"] == []


async def test_blocking_oneself_or_an_unknown_user_is_refused(
    api: httpx.AsyncClient, events: Any
) -> None:
    alice = await new_user(api)
    itself = await api.put(f"/v1/users/me/blocks/{alice['id']}", headers=alice["headers"])
    assert_error(itself, 422, "validation_error")
    unknown = await api.put(f"/v1/users/me/blocks/{uuid.uuid4().hex}", headers=alice["headers"])
    assert_error(unknown, 404, "not_found")
    too_long = await api.put(f"/v1/users/me/blocks/{'x' * 65}", headers=alice["headers"])
    assert_error(too_long, 422, "validation_error")
    assert_error(await api.put(f"/v1/users/me/blocks/{alice['id']}"), 401, "unauthorized")
    await nothing_more(events)


async def test_block_list_pages_with_a_cursor(api: httpx.AsyncClient) -> None:
    alice = await new_user(api)
    others = [await new_user(api) for _ in range(5)]
    for other in others:
        response = await api.put(f"/v1/users/me/blocks/{other['id']}", headers=alice["headers"])
        assert response.status_code == 204
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await api.get("/v1/users/me/blocks", params=params, headers=alice["headers"])
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(o["id"] for o in others)
    assert len(seen) == 5
    over = await api.get("/v1/users/me/blocks", params={"limit": 201}, headers=alice["headers"])
    assert_error(over, 422, "validation_error")


async def test_settings_default_change_and_publish_whole(
    api: httpx.AsyncClient, events: Any
) -> None:
    alice = await new_user(api)
    got = await api.get("/v1/users/me/settings", headers=alice["headers"])
    assert got.status_code == 200, got.text
    assert got.json() == DEFAULTS

    changed = await api.patch(
        "/v1/users/me/settings", json={"presence_visible_to": "nobody"}, headers=alice["headers"]
    )
    assert changed.status_code == 200, changed.text
    expected = {**DEFAULTS, "presence_visible_to": "nobody"}
    assert changed.json() == expected
    event = await events()
    assert isinstance(event, UserSettingsChanged)
    assert event.user_id == alice["id"]
    assert event.settings.model_dump() == expected

    changed = await api.patch(
        "/v1/users/me/settings",
        json={"group_invites_from": "contacts", "push_previews": False},
        headers=alice["headers"],
    )
    expected = {
        "presence_visible_to": "nobody",
        "group_invites_from": "contacts",
        "push_previews": False,
    }
    assert changed.json() == expected
    assert (await events()).settings.model_dump() == expected
    got = await api.get("/v1/users/me/settings", headers=alice["headers"])
    assert got.json() == expected


async def test_settings_body_is_closed_and_strict(api: httpx.AsyncClient, events: Any) -> None:
    alice = await new_user(api)
    for body in [
        {"presence_visible_to": "everyone"},
        {"group_invites_from": "nobody"},
        {"push_previews": "yes"},
        {"push_previews": None},
        {"theme": "dark"},
        [],
        "x",
    ]:
        response = await api.patch("/v1/users/me/settings", json=body, headers=alice["headers"])
        assert_error(response, 422, "validation_error")
    await nothing_more(events)
    assert (await api.get("/v1/users/me/settings", headers=alice["headers"])).json() == DEFAULTS


async def test_privacy_writes_spend_a_per_user_budget(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service("chat-auth", RATE_OTHER="0.01/3")
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as api:
        alice, bob, carol = await new_user(api), await new_user(api), await new_user(api)
        for _ in range(3):
            ok = await api.put(f"/v1/users/me/blocks/{bob['id']}", headers=alice["headers"])
            assert ok.status_code == 204
        limited = await api.put(f"/v1/users/me/blocks/{bob['id']}", headers=alice["headers"])
        error = assert_error(limited, 429, "rate_limited")
        assert error["details"]["retry_after"] >= 1
        assert limited.headers["Retry-After"] == str(error["details"]["retry_after"])
        # Another user's budget is their own.
        ok = await api.put(f"/v1/users/me/blocks/{bob['id']}", headers=carol["headers"])
        assert ok.status_code == 204
        for _ in range(3):
            ok = await api.patch("/v1/users/me/settings", json={}, headers=carol["headers"])
            assert ok.status_code == 200
        limited = await api.patch("/v1/users/me/settings", json={}, headers=carol["headers"])
        assert_error(limited, 429, "rate_limited")
