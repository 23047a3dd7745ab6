"""The gateway's commands over RabbitMQ: `{namespace}.message.commands`, replies by correlation id."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from chat_contracts.commands import (
    COMMANDS,
    ConversationMembers,
    MoveCursor,
    Sync,
    SyncResult,
    UserContacts,
)
from chat_contracts.errors import ApiError
from chat_contracts.socket import SyncPayload
from chat_platform.amqp import CommandClient
from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, new_client_msg_id
from chat_testkit.stored import Stored

pytestmark = pytest.mark.usefixtures("service_log_clean")


class RawCommands:
    """Commands sent by hand, the way `CommandClient` sends them, to see the wire format.

    A command the contracts name goes to its own queue; any other to the writes' queue.
    """

    def __init__(self, connection: AbstractRobustConnection, namespace: str) -> None:
        self.connection = connection
        self.namespace = namespace
        self.replies: dict[str, asyncio.Future[AbstractIncomingMessage]] = {}

    async def start(self) -> None:
        self.channel = await self.connection.channel()
        self.reply_queue = await self.channel.declare_queue(exclusive=True, auto_delete=True)
        await self.reply_queue.consume(self._on_reply, no_ack=True)

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self.replies.get(message.correlation_id or "")
        if future is not None and not future.done():
            future.set_result(message)

    async def call(self, name: str, body: bytes) -> tuple[AbstractIncomingMessage, dict[str, Any]]:
        correlation_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self.replies[correlation_id] = future
        await self.channel.default_exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                type=name,
                correlation_id=correlation_id,
                reply_to=self.reply_queue.name,
            ),
            routing_key=f"{self.namespace}.{queue_of(name)}",
        )
        reply = await asyncio.wait_for(future, 10)
        return reply, json.loads(reply.body)


def queue_of(name: str) -> str:
    command = COMMANDS.get(name)
    return command.queue if command is not None else "message.commands"


@pytest_asyncio.fixture(scope="module")
async def raw(
    module_service_env: dict[str, str], message_service: ServiceProcess
) -> AsyncIterator[RawCommands]:
    connection = await aio_pika.connect_robust(module_service_env["AMQP_URL"])
    commands = RawCommands(connection, module_service_env["NAMESPACE"])
    await commands.start()
    yield commands
    await connection.close()


def send_body(sender_id: str, conversation_id: str, **fields: Any) -> bytes:
    request = {
        "conversation_id": conversation_id,
        "client_msg_id": new_client_msg_id(),
        "text": "over the broker",
        "attachment_ids": [],
        "reply_to_id": None,
        **fields,
    }
    return json.dumps({"sender_id": sender_id, "request": request}).encode()


async def test_message_send_replies_with_the_stored_message(
    api: ChatApi, raw: RawCommands, stored: Stored
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    body = send_body(alice.id, cid)

    reply, answer = await raw.call("message.send", body)
    assert reply.content_type == "application/json"
    assert set(answer) == {"ok", "result"}
    assert answer["ok"] is True
    assert answer["result"]["created"] is True
    message = answer["result"]["message"]
    assert (message["seq"], message["sender_id"], message["text"]) == (
        1,
        alice.id,
        "over the broker",
    )
    assert (await api.history(bob, cid))["items"] == [message]

    before = stored()
    _, again = await raw.call("message.send", body)
    assert again == {"ok": True, "result": {"message": message, "created": False}}
    assert stored() == before


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        pytest.param("message.send", b"{}", "validation_error", id="empty-send"),
        pytest.param("message.send", b"[1, 2]", "validation_error", id="not-an-object"),
        pytest.param("message.send", b"{not json", "validation_error", id="not-json"),
        pytest.param("message.send", b"\xff\xfe\xfd", "validation_error", id="not-utf8"),
        pytest.param("message.teleport", b"{}", "not_found", id="unknown-command"),
        pytest.param("cursor.move", b'{"user_id": "u"}', "validation_error", id="cursor-incomplete"),
        pytest.param("sync", b'{"user_id": "u", "request": {"cursors": {"c": -1}}}', "validation_error", id="sync-negative-cursor"),
        pytest.param("sync", b'{"user_id": "u", "request": {"cursors": {"c": 9223372036854775808}}}', "validation_error", id="sync-cursor-beyond-64-bits"),
        pytest.param("message.send", b'{"sender_id": "u", "conversation_id": "c", "client_msg_id": "k", "text": "flat"}', "validation_error", id="send-without-request"),
        pytest.param("user.contacts", b'{"user_id": 5}', "validation_error", id="contacts-number"),
    ],
)  # fmt: skip
async def test_bad_commands_get_an_error_reply(
    raw: RawCommands, stored: Stored, name: str, body: bytes, code: str
) -> None:
    before = stored()
    _, answer = await raw.call(name, body)
    assert answer["ok"] is False
    assert set(answer) == {"ok", "error"}
    assert answer["error"]["code"] == code
    assert isinstance(answer["error"]["message"], str)
    assert answer["error"]["message"]
    assert stored() == before


async def test_send_errors_use_the_contract_codes(
    api: ChatApi, raw: RawCommands, stored: Stored
) -> None:
    alice, bob, stranger = await api.register_many(3)
    cid = (await api.direct(alice, bob))["id"]
    before = stored()
    cases = [
        (send_body(stranger.id, cid), "not_found"),
        (send_body(alice.id, "65a0000000000000000000ff"), "not_found"),
        (send_body(alice.id, "nope"), "not_found"),
        (send_body(alice.id, cid, text="x" * 4001), "validation_error"),
        (send_body(alice.id, cid, text=None), "validation_error"),
        (send_body(alice.id, cid, text=7), "validation_error"),
        (send_body(alice.id, cid, extra=True), "validation_error"),
    ]
    for body, code in cases:
        _, answer = await raw.call("message.send", body)
        assert answer["ok"] is False, answer
        assert answer["error"]["code"] == code, (body, answer)
    assert stored() == before


async def test_cursor_move_and_members_and_contacts(api: ChatApi, client: CommandClient) -> None:
    alice, bob, carol, stranger = await api.register_many(4)
    direct = (await api.direct(alice, bob))["id"]
    group = (await api.group(alice, [carol]))["id"]
    for _ in range(3):
        await api.sent(alice, direct)

    move = MoveCursor(user_id=bob.id, conversation_id=direct, seq=2, kind="read")
    assert (await client.call(move)).moved is True
    assert (await client.call(move.model_copy(update={"seq": 1}))).moved is False
    delivered = move.model_copy(update={"seq": 3, "kind": "delivered"})
    assert (await client.call(delivered)).moved is True
    as_bob = await api.conversation(bob, direct)
    assert (as_bob["read_seq"], as_bob["unread_count"]) == (2, 1)

    with pytest.raises(ApiError) as beyond:
        await client.call(move.model_copy(update={"seq": 4}))
    assert beyond.value.code.value == "validation_error"
    with pytest.raises(ApiError) as foreign:
        await client.call(move.model_copy(update={"user_id": stranger.id}))
    assert foreign.value.code.value == "not_found"

    members = await client.call(ConversationMembers(user_id=carol.id, conversation_id=group))
    assert members.member_ids == [alice.id, carol.id]
    with pytest.raises(ApiError) as outsider:
        await client.call(ConversationMembers(user_id=bob.id, conversation_id=group))
    assert outsider.value.code.value == "not_found"

    contacts = await client.call(UserContacts(user_id=alice.id))
    assert contacts.user_ids == sorted([bob.id, carol.id])
    assert (await client.call(UserContacts(user_id=bob.id))).user_ids == [alice.id]
    assert (await client.call(UserContacts(user_id=stranger.id))).user_ids == []


async def sync(client: CommandClient, user_id: str, **request: Any) -> dict[str, Any]:
    """A sync over the command queue, as the JSON a device gets."""
    result: SyncResult = await client.call(
        Sync(user_id=user_id, request=SyncPayload.model_validate(request, strict=False))
    )
    return result.model_dump(mode="json")


async def test_sync_returns_what_a_device_missed(api: ChatApi, client: CommandClient) -> None:
    alice, bob, carol = await api.register_many(3)
    direct = (await api.direct(alice, bob))["id"]
    group = (await api.group(carol, [bob]))["id"]
    sent = [await api.sent(alice, direct, f"m{i}") for i in range(4)]
    await api.sent(carol, group, "in the group")

    fresh = await sync(client, bob.id)
    assert set(fresh) == {"conversations", "removed_conversation_ids", "synced_at", "complete"}
    assert fresh["complete"] is True
    by_id = {c["conversation"]["id"]: c for c in fresh["conversations"]}
    assert set(by_id) == {direct, group}
    assert by_id[direct]["messages"] == sent
    assert by_id[direct]["has_more"] is False
    assert by_id[direct]["conversation"]["unread_count"] == 4

    # Holding seq 2 of the direct conversation and all of the group: only what is missing.
    since = fresh["synced_at"]
    path = f"/v1/conversations/{direct}/messages/{sent[0]['id']}"
    edited = (await api.patch(alice, path, json={"text": "m0 (edited)"})).json()
    later = await sync(client, bob.id, cursors={direct: 2, group: 1}, since=since)
    assert [c["conversation"]["id"] for c in later["conversations"]] == [direct]
    assert later["conversations"][0]["messages"] == [edited, *sent[2:]]

    # Left conversations are reported; a page limit is honoured.
    await api.delete(bob, f"/v1/conversations/{group}/members/{bob.id}")
    limited = await sync(client, bob.id, cursors={direct: 0, group: 1}, limit=3)
    assert limited["removed_conversation_ids"] == [group]
    assert [m["seq"] for m in limited["conversations"][0]["messages"]] == [1, 2, 3]
    assert limited["conversations"][0]["has_more"] is True


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("2024-01-01T00:00:00", id="without-offset"),
        pytest.param("2024-01-01T02:00:00+02:00", id="with-offset"),
    ],
)
async def test_sync_since_accepts_any_rfc3339_time(
    api: ChatApi, client: CommandClient, since: str
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    message = await api.sent(alice, cid)
    path = f"/v1/conversations/{cid}/messages/{message['id']}"
    edited = (await api.patch(alice, path, json={"text": "changed"})).json()
    result = await sync(client, bob.id, cursors={cid: 1}, since=since)
    # Everything happened after 2024: the held message, edited since, comes back as it is now.
    assert [c["conversation"]["id"] for c in result["conversations"]] == [cid]
    assert result["conversations"][0]["messages"] == [edited]
    assert datetime.fromisoformat(result["synced_at"]) <= datetime.now(UTC)


async def test_sync_since_out_of_range_is_a_validation_error(
    api: ChatApi, client: CommandClient
) -> None:
    alice = await api.register()
    with pytest.raises(ApiError) as exc:
        await sync(client, alice.id, cursors={}, since="0001-01-01T00:00:00+01:00")
    assert exc.value.code.value == "validation_error"
