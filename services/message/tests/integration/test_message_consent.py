"""Blocks, settings and contacts (CONTRACT §7.2, §7.5), fed to the service as auth's events.

Auth publishes `user.blocked`, `user.unblocked` and `user.settings_changed`; here the
test publishes them itself on the stack's exchange, so the message service's side is
checked alone: applied within 2 s, idempotent, and enforced on every door.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from chat_contracts import Envelope, UserSettings
from chat_contracts.commands import (
    PresenceAudience,
    SendMessage,
    UserContacts,
    VisiblePresence,
)
from chat_contracts.errors import ApiError, ErrorCode
from chat_contracts.events import Event, UserBlocked, UserSettingsChanged, UserUnblocked
from chat_contracts.socket import SendMessagePayload
from chat_platform.amqp import Broker, CommandClient
from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, User, new_client_msg_id

pytestmark = pytest.mark.usefixtures("service_log_clean")

# CONTRACT §7.5: a change is enforced everywhere within 2 s.
APPLIED_WITHIN = 2.0


class AuthEvents:
    """Publishes what the auth service would, and waits until the message service applied it."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def publish(self, event: Event, *, at: datetime | None = None) -> Envelope:
        envelope = Envelope.wrap(event, "chat-auth")
        if at is not None:
            envelope = envelope.model_copy(update={"occurred_at": at})
        await self.broker.publish(envelope)
        return envelope

    async def block(self, blocker: User, blocked: User) -> None:
        await self.publish(UserBlocked(blocker_id=blocker.id, blocked_id=blocked.id))

    async def unblock(self, blocker: User, blocked: User) -> None:
        await self.publish(UserUnblocked(blocker_id=blocker.id, blocked_id=blocked.id))

    async def settings(self, user: User, **fields: object) -> None:
        settings = UserSettings.model_validate(fields)
        await self.publish(UserSettingsChanged(user_id=user.id, settings=settings))


@pytest_asyncio.fixture(scope="module")
async def broker_and_commands(
    module_service_env: dict[str, str], message_service: ServiceProcess
) -> AsyncIterator[tuple[Broker, CommandClient]]:
    env = module_service_env
    broker = Broker(env["AMQP_URL"], f"{env['NAMESPACE']}.events", name="consent-tests")
    commands = CommandClient(broker, env["NAMESPACE"], timeout=10)
    await commands.start()
    await broker.start()
    yield broker, commands
    await broker.close()


@pytest.fixture(scope="module")
def auth_events(broker_and_commands: tuple[Broker, CommandClient]) -> AuthEvents:
    return AuthEvents(broker_and_commands[0])


@pytest.fixture(scope="module")
def commands(broker_and_commands: tuple[Broker, CommandClient]) -> CommandClient:
    return broker_and_commands[1]


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """How long until `check()` holds; fails after `seconds`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not await check():
        if loop.time() - started > seconds:
            raise AssertionError(f"not applied within {seconds} s")
        await asyncio.sleep(0.05)
    return loop.time() - started


async def status_of(
    api: ChatApi, user: User, method: str, path: str, **kwargs: object
) -> tuple[int, dict[str, object]]:
    response = await api.request(user, method, path, **kwargs)
    return response.status_code, response.json() if response.content else {}


def open_direct(api: ChatApi, user: User, other: User) -> Awaitable[tuple[int, dict[str, object]]]:
    return status_of(
        api, user, "POST", "/v1/conversations", json={"type": "direct", "member_ids": [other.id]}
    )


async def test_a_block_refuses_opening_and_writing_direct_within_two_seconds(
    api: ChatApi, auth_events: AuthEvents, commands: CommandClient
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(bob, alice))["id"]
    await api.sent(bob, cid, "before the block")

    await auth_events.block(alice, bob)

    async def refused() -> bool:
        return (await open_direct(api, bob, alice))[0] == 403

    assert await within(APPLIED_WITHIN, refused) <= APPLIED_WITHIN
    status, body = await open_direct(api, bob, alice)
    assert (status, body["error"]["code"]) == (403, "forbidden")  # type: ignore[index]
    response = await api.send(bob, cid, "after the block")
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    # The gateway's command takes the same rules.
    send = SendMessage(
        sender_id=bob.id,
        request=SendMessagePayload(
            conversation_id=cid, client_msg_id=new_client_msg_id(), text="over the socket"
        ),
    )
    with pytest.raises(ApiError) as refused_send:
        await commands.call(send)
    assert refused_send.value.code is ErrorCode.FORBIDDEN
    assert [m["text"] for m in await api.all_messages(alice, cid)] == ["before the block"]
    # The blocker is not the one refused.
    await api.sent(alice, cid, "from the blocker")

    await auth_events.unblock(alice, bob)

    async def allowed() -> bool:
        return (await api.send(bob, cid, "after the unblock")).status_code == 201

    await within(APPLIED_WITHIN, allowed)
    assert (await open_direct(api, bob, alice))[0] == 200


async def test_redelivered_and_overtaken_events_change_nothing(
    api: ChatApi, auth_events: AuthEvents
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(bob, alice))["id"]
    now = datetime.now(UTC)
    blocked = await auth_events.publish(UserBlocked(blocker_id=alice.id, blocked_id=bob.id), at=now)

    async def refused() -> bool:
        return (await api.send(bob, cid)).status_code == 403

    await within(APPLIED_WITHIN, refused)
    # An unblock that happened before the block arrives late, and the block again.
    await auth_events.publish(
        UserUnblocked(blocker_id=alice.id, blocked_id=bob.id), at=now - timedelta(seconds=1)
    )
    await auth_events.broker.publish(blocked)
    await asyncio.sleep(0.5)
    assert (await api.send(bob, cid)).status_code == 403


async def test_blocked_user_cannot_add_the_blocker_to_a_group_and_adds_fail_whole(
    api: ChatApi, auth_events: AuthEvents
) -> None:
    alice, bob, carol, dave = await api.register_many(4)
    await auth_events.block(alice, bob)
    await auth_events.block(carol, bob)

    async def refused() -> bool:
        status, _ = await status_of(
            api,
            bob,
            "POST",
            "/v1/conversations",
            json={"type": "group", "title": "g", "member_ids": [alice.id, dave.id]},
        )
        return status == 403

    await within(APPLIED_WITHIN, refused)
    group = await api.group(bob, [dave])
    status, body = await status_of(
        api,
        bob,
        "POST",
        f"/v1/conversations/{group['id']}/members",
        json={"user_ids": [dave.id, alice.id, carol.id]},
    )
    assert status == 403
    assert body["error"]["code"] == "forbidden"  # type: ignore[index]
    assert body["error"]["details"]["user_ids"] == sorted([alice.id, carol.id])  # type: ignore[index]
    assert (await api.conversation(bob, group["id"]))["member_ids"] == [bob.id, dave.id]

    # In a group they already share, both still see each other's messages.
    shared = await api.group(dave, [alice, bob])
    await api.sent(bob, shared["id"], "from the blocked")
    await api.sent(alice, shared["id"], "from the blocker")
    for reader in (alice, bob):
        texts = [m["text"] for m in await api.all_messages(reader, shared["id"])]
        assert texts == ["from the blocked", "from the blocker"]


async def test_group_invites_from_contacts(api: ChatApi, auth_events: AuthEvents) -> None:
    alice, friend, stranger, listener = await api.register_many(4)
    # A contact of alice: someone alice has written to in their direct conversation.
    direct = (await api.direct(friend, alice))["id"]
    await api.sent(alice, direct, "hi friend")
    # Someone who wrote to alice is not one of her contacts until she answers.
    heard = (await api.direct(listener, alice))["id"]
    await api.sent(listener, heard, "hello alice")
    await auth_events.settings(alice, group_invites_from="contacts")

    async def applied() -> bool:
        status, _ = await status_of(
            api,
            stranger,
            "POST",
            "/v1/conversations",
            json={"type": "group", "title": "g", "member_ids": [alice.id]},
        )
        return status == 403

    await within(APPLIED_WITHIN, applied)
    status, body = await status_of(
        api,
        listener,
        "POST",
        "/v1/conversations",
        json={"type": "group", "title": "g", "member_ids": [alice.id]},
    )
    assert status == 403
    assert body["error"]["details"]["user_ids"] == [alice.id]  # type: ignore[index]
    await api.group(friend, [alice])

    # Deleting the message that made friend a contact does not undo it.
    sent = (await api.all_messages(alice, direct))[0]
    await api.delete_message(alice, direct, sent["id"])
    await api.group(friend, [alice])


async def test_presence_commands_follow_contacts_settings_and_blocks(
    api: ChatApi, auth_events: AuthEvents, commands: CommandClient
) -> None:
    alice, bob, carol, dave, eve = await api.register_many(5)
    for other in (bob, carol, dave):
        cid = (await api.direct(alice, other))["id"]
        await api.sent(alice, cid, "hi")
    # eve wrote to alice; alice never answered: eve is not alice's contact.
    heard = (await api.direct(eve, alice))["id"]
    await api.sent(eve, heard, "hello")
    # Sharing a group shows nothing.
    await api.group(alice, [eve])

    async def audience() -> list[str]:
        return (await commands.call(PresenceAudience(user_id=alice.id))).user_ids

    async def visible(viewer: User) -> list[str]:
        ids = [alice.id, bob.id, eve.id, viewer.id]
        reply = await commands.call(VisiblePresence(viewer_id=viewer.id, user_ids=ids))
        return reply.user_ids

    assert await audience() == sorted([bob.id, carol.id, dave.id])
    assert alice.id in await visible(bob)
    assert alice.id not in await visible(eve)
    assert eve.id in await visible(eve)
    # eve wrote to alice (alice is eve's contact); alice never heard from bob.
    assert await visible(alice) == sorted([alice.id, eve.id])

    await auth_events.block(carol, alice)  # carol blocked alice
    await auth_events.block(alice, dave)  # alice blocked dave

    async def blocks_applied() -> bool:
        return await audience() == [bob.id]

    await within(APPLIED_WITHIN, blocks_applied)
    assert alice.id not in await visible(dave)

    await auth_events.settings(alice, presence_visible_to="nobody")

    async def hidden() -> bool:
        return await audience() == []

    await within(APPLIED_WITHIN, hidden)
    assert alice.id not in await visible(bob)
    assert alice.id in await visible(alice)
    # The old command still answers until the gateways have moved.
    contacts = await commands.call(UserContacts(user_id=alice.id))
    assert bob.id in contacts.user_ids
