"""Attachments in GridFS: uploaded by a user, readable by the members who can see them."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from starlette.datastructures import UploadFile

from chat_contracts import Attachment
from chat_contracts.errors import ApiError, ErrorCode, not_found
from chat_message.attachments.sniff import SNIFF_BYTES, sniff
from chat_message.ids import is_id, new_id
from chat_message.resources import now_ms
from chat_message.store import Store
from chat_platform.mongo import Document

CHUNK = 256 * 1024


def _clean_name(name: str | None) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    return cleaned or "file"


class Attachments:
    def __init__(self, store: Store, files: AsyncGridFSBucket, *, max_bytes: int) -> None:
        self.store = store
        self.files = files
        self.max_bytes = max_bytes

    async def upload(self, user_id: str, file: UploadFile) -> Attachment:
        limit = self.max_bytes
        head = await file.read(SNIFF_BYTES)
        if not head:
            raise ApiError(ErrorCode.VALIDATION_ERROR, "The file is empty.")
        content_type = sniff(head)
        if content_type is None:
            raise ApiError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "This kind of file is not accepted (images, audio, video, PDF and plain text are).",
            )
        attachment_id = new_id()
        name = _clean_name(file.filename)
        size = len(head)
        stream = self.files.open_upload_stream(
            name, metadata={"attachment_id": attachment_id, "content_type": content_type}
        )
        try:
            await stream.write(head)
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        ErrorCode.PAYLOAD_TOO_LARGE,
                        f"An attachment is at most {limit} bytes.",
                        {"max_bytes": limit},
                    )
                await stream.write(chunk)
        except BaseException:
            await stream.abort()
            raise
        await stream.close()
        attachment = Attachment(id=attachment_id, name=name, content_type=content_type, size=size)
        await self.store.attachments.insert_one(
            {
                "_id": attachment_id,
                "uploader_id": user_id,
                "name": name,
                "content_type": content_type,
                "size": size,
                "file_id": stream._id,
                "conversation_ids": [],
                "created_at": now_ms(),
            }
        )
        return attachment

    async def readable(self, user_id: str, attachment_id: str) -> Document:
        """The attachment if the user uploaded it or is in a conversation that shows it."""
        doc = (
            await self.store.attachments.find_one({"_id": attachment_id})
            if is_id(attachment_id)
            else None
        )
        if doc is None:
            raise not_found("Attachment")
        if doc["uploader_id"] == user_id:
            return doc
        shown_to_user = await self.store.conversations.find_one(
            {"_id": {"$in": doc["conversation_ids"]}, "member_ids": user_id}, {"_id": 1}
        )
        if shown_to_user is None:
            raise not_found("Attachment")
        return doc

    async def download(self, file_id: ObjectId) -> AsyncIterator[bytes]:
        stream = await self.files.open_download_stream(file_id)
        try:
            while chunk := await stream.read(CHUNK):
                yield chunk
        finally:
            await stream.close()


def download_headers(doc: Document) -> dict[str, Any]:

    disposition = (
        "inline" if doc["content_type"].startswith(("image/", "audio/", "video/")) else "attachment"
    )
    return {
        "Content-Length": str(doc["size"]),
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(doc['name'])}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=86400",
    }
