"""Attachments: upload, who may download, size and type limits (black box)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from urllib.parse import urlsplit

import pytest
from message_support import ELF_HEADER, PNG_1X1

from chat_testkit import ServiceProcess
from chat_testkit.api import ChatApi, User
from chat_testkit.contract import assert_error
from chat_testkit.stored import Stored

MAX_ATTACHMENT_BYTES = 64 * 1024

pytestmark = pytest.mark.usefixtures("service_log_clean")


@pytest.fixture(scope="module")
def message_extra_env() -> dict[str, str]:
    return {"MAX_ATTACHMENT_BYTES": str(MAX_ATTACHMENT_BYTES)}


async def uploaded(api: ChatApi, user: User, content: bytes = PNG_1X1) -> dict[str, object]:
    response = await api.upload(user, content)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_an_uploaded_png_is_described_and_readable_by_its_uploader(
    api: ChatApi, stored: Stored
) -> None:
    alice = await api.register()
    before = stored()
    response = await api.upload(
        alice, PNG_1X1, name="../../holiday pic.png", content_type="text/x-evil"
    )
    assert response.status_code == 201, response.text
    attachment = response.json()
    assert set(attachment) == {"id", "name", "content_type", "size"}
    # The type comes from the bytes and the name loses its path.
    assert (attachment["name"], attachment["content_type"]) == ("holiday pic.png", "image/png")
    assert attachment["size"] == len(PNG_1X1)
    assert stored()["attachments"] == before["attachments"] + 1

    download = await api.get(alice, f"/v1/attachments/{attachment['id']}")
    assert download.status_code == 200
    assert download.content == PNG_1X1
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_members_of_a_conversation_showing_it_may_download_it(api: ChatApi) -> None:
    alice, bob, outsider = await api.register_many(3)
    cid = (await api.direct(alice, bob))["id"]
    attachment = await uploaded(api, alice)
    path = f"/v1/attachments/{attachment['id']}"

    # Before any message shows it, only the uploader can read it.
    assert_error(await api.get(bob, path), 404, "not_found")

    message = await api.sent(alice, cid, None, attachment_ids=[attachment["id"]])
    assert message["text"] is None
    assert message["attachments"] == [attachment]
    assert (await api.history(bob, cid))["items"][0]["attachments"] == [attachment]

    as_bob = await api.get(bob, path)
    assert (as_bob.status_code, as_bob.content) == (200, PNG_1X1)
    assert_error(await api.get(outsider, path), 404, "not_found")


async def test_a_large_upload_round_trips_byte_for_byte(api: ChatApi) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    content = PNG_1X1 + os.urandom(MAX_ATTACHMENT_BYTES - len(PNG_1X1))
    attachment = await uploaded(api, alice, content)
    assert attachment["size"] == MAX_ATTACHMENT_BYTES
    await api.sent(alice, cid, "the big one", attachment_ids=[attachment["id"]])
    download = await api.get(bob, f"/v1/attachments/{attachment['id']}")
    assert download.content == content
    assert download.headers["content-length"] == str(MAX_ATTACHMENT_BYTES)


async def test_only_ones_own_uploads_can_be_attached(api: ChatApi, stored: Stored) -> None:
    alice, bob = await api.register_many(2)
    cid = (await api.direct(alice, bob))["id"]
    alices = await uploaded(api, alice)
    before = stored()
    response = await api.send(bob, cid, "look", attachment_ids=[alices["id"]])
    assert_error(response, 404, "not_found")
    unknown = await api.send(bob, cid, "look", attachment_ids=["65a000000000000000000009"])
    assert_error(unknown, 404, "not_found")
    assert stored() == before
    assert_error(await api.get(bob, f"/v1/attachments/{alices['id']}"), 404, "not_found")


@pytest.mark.parametrize(
    "attachment_id", ["65a000000000000000000009", "nope", "x" * 300, "%24where"]
)
async def test_unknown_or_malformed_attachment_ids_are_not_found(
    api: ChatApi, attachment_id: str
) -> None:
    alice = await api.register()
    assert_error(await api.get(alice, f"/v1/attachments/{attachment_id}"), 404, "not_found")


async def test_a_file_over_the_limit_is_refused_and_nothing_is_kept(
    api: ChatApi, stored: Stored
) -> None:
    alice = await api.register()
    before = stored()
    # Just over the limit: the framing allowance lets the body in, the service counts the file.
    response = await api.upload(alice, PNG_1X1 + os.urandom(MAX_ATTACHMENT_BYTES))
    error = assert_error(response, 413, "payload_too_large")
    assert error["details"]["max_bytes"] == MAX_ATTACHMENT_BYTES
    assert stored() == before


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 response with a Content-Length: its head and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


async def raw_exchange(url: str, head: bytes, chunks: list[bytes]) -> tuple[bytes, int]:
    """Send `head`, then `chunks` one by one, each only if no answer came meanwhile.

    Pacing the chunks means the server never closes on unread data, so the answer is
    not lost to a reset. Returns the answer and how many chunks were sent before it.
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    sent = 0
    try:
        writer.write(head)
        await writer.drain()
        answer = asyncio.ensure_future(read_response(reader))
        for chunk in chunks:
            done, _ = await asyncio.wait({answer}, timeout=0.05)
            if done:
                break
            writer.write(chunk)
            await writer.drain()
            sent += 1
        return await asyncio.wait_for(answer, 10), sent
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def multipart_head(user: User, path: str, length_header: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user.token}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n".encode()
        + length_header
        + b'\r\n--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + PNG_1X1
    )


async def test_a_declared_oversize_body_is_refused_before_it_is_sent(
    api: ChatApi, message_service: ServiceProcess, stored: Stored
) -> None:
    alice = await api.register()
    before = stored()
    head = multipart_head(alice, "/v1/attachments", b"Content-Length: 52428800\r\n")
    headers_only = head.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
    # Not one byte of the 50 MiB body is sent: the answer must come from the headers alone.
    answer, _ = await raw_exchange(message_service.url, headers_only, [])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer
    assert stored() == before


async def test_a_chunked_oversize_body_is_cut_off_once_past_the_limit(
    api: ChatApi, message_service: ServiceProcess, stored: Stored
) -> None:
    alice = await api.register()
    before = stored()
    data = b"\0" * 16384
    chunk = f"{len(data):x}\r\n".encode() + data + b"\r\n"
    head, first = multipart_head(alice, "/v1/attachments", b"Transfer-Encoding: chunked\r\n").split(
        b"\r\n\r\n", 1
    )
    framed = head + b"\r\n\r\n" + f"{len(first):x}\r\n".encode() + first + b"\r\n"
    # Ten times the limit is offered; the upload limit (file + framing allowance) is
    # 8 chunks, so the answer must come right after the chunk that crosses it.
    offered = 10 * MAX_ATTACHMENT_BYTES // len(data)
    answer, sent = await raw_exchange(message_service.url, framed, [chunk] * offered)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent <= 2 * MAX_ATTACHMENT_BYTES // len(data) + 1
    assert stored() == before


@pytest.mark.parametrize(
    ("content", "name", "content_type"),
    [
        pytest.param(ELF_HEADER + os.urandom(512), "cat.png", "image/png", id="elf-named-png"),
        pytest.param(b"MZ\x90\x00" + os.urandom(512), "setup.exe", "application/x-msdownload", id="exe"),
        pytest.param(b"PK\x03\x04" + os.urandom(512), "docs.zip", "application/zip", id="zip"),
        pytest.param(b"\x00\x01\x02\x03" + os.urandom(512), "blob.bin", "application/octet-stream", id="binary"),
    ],
)  # fmt: skip
async def test_disallowed_types_are_unsupported_whatever_they_claim(
    api: ChatApi, stored: Stored, content: bytes, name: str, content_type: str
) -> None:
    alice = await api.register()
    before = stored()
    response = await api.upload(alice, content, name=name, content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert stored() == before


async def test_plain_text_is_accepted_as_text(api: ChatApi) -> None:
    alice = await api.register()
    attachment = await uploaded(api, alice, "notes: ünïcode\n".encode())
    assert attachment["content_type"] == "text/plain"


async def test_uploads_without_a_usable_file_are_validation_errors(
    api: ChatApi, stored: Stored
) -> None:
    alice = await api.register()
    before = stored()
    assert_error(await api.upload(alice, b""), 422, "validation_error")
    wrong_field = await api.post(alice, "/v1/attachments", files={"upload": ("a.png", PNG_1X1)})
    assert_error(wrong_field, 422, "validation_error")
    assert_error(
        await api.post(alice, "/v1/attachments", json={"file": "x"}), 422, "validation_error"
    )
    broken = await api.post(
        alice,
        "/v1/attachments",
        content=b"--xyz\r\nnot really multipart",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert_error(broken, 422, "validation_error")
    assert stored() == before


async def test_uploading_and_downloading_need_a_token(api: ChatApi) -> None:
    alice = await api.register()
    attachment = await uploaded(api, alice)
    assert_error(await api.upload(User("x", "x", "garbage"), PNG_1X1), 401, "unauthorized")
    assert_error(await api.get(None, f"/v1/attachments/{attachment['id']}"), 401, "unauthorized")
