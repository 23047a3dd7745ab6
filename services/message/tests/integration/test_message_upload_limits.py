"""Uploads: a per-user quota, bounded concurrent uploads, unused and deleted files removed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from chat_testkit.api import ChatApi, User
from chat_testkit.stored import Stored

pytestmark = pytest.mark.usefixtures("service_log_clean")

QUOTA = 3000
GRACE = 1.0


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {
        "UPLOAD_QUOTA_BYTES": str(QUOTA),
        "MAX_UPLOADS_PER_USER": "1",
        "MAX_UPLOADS_PER_INSTANCE": "2",
        "ATTACHMENT_GC_GRACE_SECONDS": str(GRACE),
        "ATTACHMENT_GC_EVERY_SECONDS": "0.3",
    }


def text_file(size: int) -> bytes:
    return b"n" * size


async def upload_and_send(api: ChatApi, user: User, cid: str, size: int) -> dict[str, str]:
    response = await api.upload(user, text_file(size), "note.txt", "text/plain")
    assert response.status_code == 201, response.text
    attachment_id = response.json()["id"]
    message = await api.sent(user, cid, None, attachment_ids=[attachment_id])
    return {"attachment_id": attachment_id, "message_id": message["id"]}


async def test_quota_counts_what_a_user_holds(api: ChatApi) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    first = await upload_and_send(api, alice, cid, 1000)
    await upload_and_send(api, alice, cid, 1000)
    response = await api.upload(alice, text_file(1500), "big.txt", "text/plain")
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"] == {"quota_bytes": QUOTA, "available_bytes": 1000}
    # Bob's quota is his own.
    assert (await api.upload(bob, text_file(1500), "big.txt", "text/plain")).status_code == 201
    # A deleted message's file no longer counts.
    await api.delete_message(alice, cid, first["message_id"])
    assert (await api.upload(alice, text_file(1500), "big.txt", "text/plain")).status_code == 201


async def test_a_deleted_messages_file_is_removed(api: ChatApi, stored: Stored) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    sent = await upload_and_send(api, alice, cid, 100)
    path = f"/v1/attachments/{sent['attachment_id']}"
    assert (await api.get(bob, path)).status_code == 200
    files_before = stored.db["fs.files"].count_documents({})

    await api.delete_message(alice, cid, sent["message_id"])

    for user in (alice, bob):
        response = await api.get(user, path)
        assert response.status_code == 404, response.text
    assert stored.db["attachments"].count_documents({"_id": sent["attachment_id"]}) == 0
    assert stored.db["fs.files"].count_documents({}) == files_before - 1


async def test_unused_attachments_are_collected_after_the_grace_period(
    api: ChatApi, stored: Stored
) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    unused = (await api.upload(alice, text_file(10), "n.txt", "text/plain")).json()["id"]
    used = await upload_and_send(api, alice, cid, 10)
    # Still there within the grace period.
    assert (await api.get(alice, f"/v1/attachments/{unused}")).status_code == 200
    deadline = asyncio.get_running_loop().time() + GRACE + 5
    while stored.db["attachments"].count_documents({"_id": unused}):
        assert asyncio.get_running_loop().time() < deadline, "never collected"
        await asyncio.sleep(0.2)
    assert (await api.get(alice, f"/v1/attachments/{unused}")).status_code == 404
    assert (await api.get(bob, f"/v1/attachments/{used['attachment_id']}")).status_code == 200


class HeldUpload:
    """An upload whose body stops halfway until `release()`: it holds its slot meanwhile."""

    def __init__(self, api: ChatApi, user: User) -> None:
        self.api = api
        self.user = user
        self.started = asyncio.Event()
        self.go_on = asyncio.Event()
        self.task: asyncio.Task[httpx.Response] | None = None

    async def _body(self, boundary: str) -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="slow.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode() + b"s" * 100
        self.started.set()
        await self.go_on.wait()
        yield b"s" * 100 + f"\r\n--{boundary}--\r\n".encode()

    async def start(self) -> None:
        boundary = uuid.uuid4().hex
        self.task = asyncio.create_task(
            self.api.post(
                self.user,
                "/v1/attachments",
                content=self._body(boundary),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        )
        await self.started.wait()
        # Time for the request to reach the handler, which takes the slot.
        await asyncio.sleep(0.3)

    async def release(self) -> httpx.Response:
        self.go_on.set()
        assert self.task is not None
        return await self.task


async def test_concurrent_uploads_are_bounded_per_user_and_per_instance(api: ChatApi) -> None:
    alice, bob, carol = await api.register_many(3)
    held_alice = HeldUpload(api, alice)
    await held_alice.start()
    try:
        # Alice's second upload at once: 429, whatever the body.
        response = await api.upload(alice, text_file(10), "n.txt", "text/plain")
        assert response.status_code == 429, response.text
        assert response.json()["error"]["details"]["retry_after"] >= 1
        assert "Retry-After" in response.headers
        held_bob = HeldUpload(api, bob)
        await held_bob.start()
        try:
            # The instance's two slots are taken: 503 for anyone else.
            response = await api.upload(carol, text_file(10), "n.txt", "text/plain")
            assert response.status_code == 503, response.text
            assert response.json()["error"]["details"]["retry_after"] >= 1
        finally:
            assert (await held_bob.release()).status_code == 201
    finally:
        assert (await held_alice.release()).status_code == 201
    # Slots come back once the uploads finish.
    assert (await api.upload(carol, text_file(10), "n.txt", "text/plain")).status_code == 201
