"""Direct conversations, groups and their members, and the conversation list (black box)."""

from __future__ import annotations

import pytest

from chat_testkit.api import ChatApi
from chat_testkit.contract import assert_error
from chat_testkit.stored import Stored

MAX_GROUP_MEMBERS = 4

pytestmark = pytest.mark.usefixtures("service_log_clean")


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {"MAX_GROUP_MEMBERS": str(MAX_GROUP_MEMBERS)}


async def test_a_direct_conversation_is_created_once_whoever_asks(
    api: ChatApi, stored: Stored
) -> None:
    alice, bob = await api.register_many(2)
    before = stored()["conversations"]

    first = await api.post(
        alice, "/v1/conversations", json={"type": "direct", "member_ids": [bob.id]}
    )
    again = await api.post(
        alice, "/v1/conversations", json={"type": "direct", "member_ids": [bob.id]}
    )
    other_side = await api.post(
        bob, "/v1/conversations", json={"type": "direct", "member_ids": [alice.id]}
    )

    assert (first.status_code, again.status_code, other_side.status_code) == (201, 200, 200)
    conversation = first.json()
    assert again.json()["id"] == other_side.json()["id"] == conversation["id"]
    assert conversation["type"] == "direct"
    assert conversation["title"] is None
    assert sorted(conversation["member_ids"]) == sorted([alice.id, bob.id])
    assert (conversation["last_seq"], conversation["last_message"]) == (0, None)
    assert (conversation["read_seq"], conversation["unread_count"]) == (0, 0)
    assert stored()["conversations"] == before + 1


async def test_a_direct_conversation_answered_again_shows_the_callers_own_counters(
    api: ChatApi,
) -> None:
    alice, bob = await api.register_many(2)
    conversation = await api.direct(alice, bob)
    for _ in range(3):
        await api.sent(alice, conversation["id"])
    as_bob = await api.direct(bob, alice)
    as_alice = await api.direct(alice, bob)
    assert (as_bob["last_seq"], as_bob["read_seq"], as_bob["unread_count"]) == (3, 0, 3)
    assert (as_alice["read_seq"], as_alice["unread_count"]) == (3, 0)
    assert as_bob["last_message"]["seq"] == 3


async def test_a_group_has_its_title_and_members_with_the_creator(
    api: ChatApi, stored: Stored
) -> None:
    owner, bob, carol, outsider = await api.register_many(4)
    before = stored()
    group = await api.group(owner, [bob, carol], title="  Weekend plans ")
    assert group["type"] == "group"
    assert group["title"] == "Weekend plans"
    assert group["member_ids"] == [owner.id, bob.id, carol.id]
    assert (group["last_seq"], group["unread_count"]) == (0, 0)
    for member in (owner, bob, carol):
        assert (await api.conversation(member, group["id"]))["member_ids"] == group["member_ids"]
    assert_error(await api.get(outsider, f"/v1/conversations/{group['id']}"), 404, "not_found")
    after = stored()
    assert after["conversations"] == before["conversations"] + 1
    assert after["members"] == before["members"] + 3


async def test_the_creator_listed_among_the_members_is_not_counted_twice(api: ChatApi) -> None:
    owner, bob = await api.register_many(2)
    group = await api.group(owner, [owner, bob])
    assert group["member_ids"] == [owner.id, bob.id]


async def test_members_can_be_added_and_then_see_the_group(api: ChatApi) -> None:
    owner, bob, carol, dave = await api.register_many(4)
    group = await api.group(owner, [bob])
    await api.sent(owner, group["id"], "before carol joined")
    assert_error(await api.get(carol, f"/v1/conversations/{group['id']}"), 404, "not_found")

    added = await api.post(
        bob, f"/v1/conversations/{group['id']}/members", json={"user_ids": [carol.id, dave.id]}
    )
    assert added.status_code == 200, added.text
    assert added.json()["member_ids"] == [owner.id, bob.id, carol.id, dave.id]

    as_carol = await api.conversation(carol, group["id"])
    assert as_carol["member_ids"] == [owner.id, bob.id, carol.id, dave.id]
    # A newcomer starts with the conversation read up to when they joined.
    assert (as_carol["last_seq"], as_carol["read_seq"], as_carol["unread_count"]) == (1, 1, 0)
    await api.sent(carol, group["id"], "hi all")

    # Adding someone who is already there changes nothing.
    again = await api.post(
        owner, f"/v1/conversations/{group['id']}/members", json={"user_ids": [carol.id]}
    )
    assert again.status_code == 200
    assert again.json()["member_ids"] == [owner.id, bob.id, carol.id, dave.id]


async def test_the_owner_removes_members_and_anyone_can_leave(api: ChatApi, stored: Stored) -> None:
    owner, bob, carol, dave = await api.register_many(4)
    group = await api.group(owner, [bob, carol, dave])
    path = f"/v1/conversations/{group['id']}/members"

    before = stored()
    forbidden = await api.delete(bob, f"{path}/{carol.id}")
    assert_error(forbidden, 403, "forbidden")
    assert stored() == before
    assert carol.id in (await api.conversation(owner, group["id"]))["member_ids"]

    removed = await api.delete(owner, f"{path}/{bob.id}")
    assert removed.status_code == 204
    assert removed.content == b""
    assert_error(await api.get(bob, f"/v1/conversations/{group['id']}"), 404, "not_found")
    assert_error(await api.send(bob, group["id"]), 404, "not_found")

    left = await api.delete(carol, f"{path}/{carol.id}")
    assert left.status_code == 204
    assert_error(await api.get(carol, f"/v1/conversations/{group['id']}"), 404, "not_found")

    remaining = await api.conversation(dave, group["id"])
    assert remaining["member_ids"] == [owner.id, dave.id]
    assert stored()["members"] == before["members"] - 2

    # Someone no longer in the group cannot be removed again, nor act on it.
    assert_error(await api.delete(owner, f"{path}/{bob.id}"), 404, "not_found")
    assert_error(await api.delete(bob, f"{path}/{dave.id}"), 404, "not_found")


async def test_nobody_leaves_a_direct_conversation(api: ChatApi, stored: Stored) -> None:
    alice, bob = await api.register_many(2)
    conversation = await api.direct(alice, bob)
    before = stored()
    response = await api.delete(alice, f"/v1/conversations/{conversation['id']}/members/{bob.id}")
    assert_error(response, 422, "validation_error")
    assert stored() == before


async def test_a_group_has_at_most_the_configured_members(api: ChatApi, stored: Stored) -> None:
    owner, *others = await api.register_many(MAX_GROUP_MEMBERS + 1)
    before = stored()
    too_big = await api.post(
        owner,
        "/v1/conversations",
        json={"type": "group", "title": "big", "member_ids": [u.id for u in others]},
    )
    assert_error(too_big, 422, "validation_error")
    assert stored() == before

    group = await api.group(owner, others[: MAX_GROUP_MEMBERS - 2])
    assert len(group["member_ids"]) == MAX_GROUP_MEMBERS - 1
    path = f"/v1/conversations/{group['id']}/members"
    two_more = await api.post(owner, path, json={"user_ids": [u.id for u in others[-2:]]})
    assert_error(two_more, 422, "validation_error")
    assert len((await api.conversation(owner, group["id"]))["member_ids"]) == MAX_GROUP_MEMBERS - 1

    last_seat = await api.post(owner, path, json={"user_ids": [others[-2].id]})
    assert last_seat.status_code == 200
    assert len(last_seat.json()["member_ids"]) == MAX_GROUP_MEMBERS
    assert_error(
        await api.post(owner, path, json={"user_ids": [others[-1].id]}), 422, "validation_error"
    )


async def test_the_list_is_most_recent_activity_first_and_pages_with_a_cursor(
    api: ChatApi,
) -> None:
    me, *friends = await api.register_many(6)
    created = [await api.direct(me, friend) for friend in friends]
    oldest = created[0]["id"]

    listed = await api.get(me, "/v1/conversations")
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) == {"items", "next_cursor"}
    assert [c["id"] for c in body["items"]] == [c["id"] for c in reversed(created)]
    assert body["next_cursor"] is None

    # A message makes the oldest conversation the most recent one.
    await api.sent(friends[0], oldest, "wake up")
    expected = [oldest, *(c["id"] for c in reversed(created[1:]))]

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(me, "/v1/conversations", params=params)).json()
        pages.append([c["id"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [cid for p in pages for cid in p] == expected

    first = (await api.get(me, "/v1/conversations", params={"limit": 1})).json()["items"][0]
    assert first["id"] == oldest
    assert (first["last_seq"], first["read_seq"], first["unread_count"]) == (1, 0, 1)
    assert first["last_message"]["text"] == "wake up"


async def test_the_list_shows_only_the_callers_conversations(api: ChatApi) -> None:
    alice, bob, carol = await api.register_many(3)
    mine = await api.direct(alice, bob)
    group = await api.group(alice, [bob, carol])
    theirs = await api.direct(bob, carol)
    await api.delete(carol, f"/v1/conversations/{group['id']}/members/{carol.id}")

    listed = {c["id"] for c in (await api.get(alice, "/v1/conversations")).json()["items"]}
    assert listed == {mine["id"], group["id"]}
    carols = {c["id"] for c in (await api.get(carol, "/v1/conversations")).json()["items"]}
    assert carols == {theirs["id"]}
