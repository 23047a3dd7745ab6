"""Attachments in GridFS: uploaded by a user, readable by the members who can see them."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from starlette.datastructures import UploadFile

from chat_contracts import Attachment
from chat_contracts.errors import ApiError, ErrorCode, invalid, not_found, rate_limited, unavailable
from chat_message.attachments.sniff import SNIFF_BYTES, sniff
from chat_message.ids import is_id, new_id
from chat_message.resources import now_ms
from chat_message.store import Store
from chat_platform.mongo import Document

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Attachments removed per query of a sweep.
SWEEP_BATCH = 100


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    quota_bytes: int
    per_user: int
    per_instance: int
    gc_grace_seconds: float


def _clean_name(name: str | None) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    return cleaned or "file"


def _too_large(message: str, details: dict[str, Any]) -> ApiError:
    return ApiError(ErrorCode.PAYLOAD_TOO_LARGE, message, details)


class Attachments:
    def __init__(self, store: Store, files: AsyncGridFSBucket, limits: UploadLimits) -> None:
        self.store = store
        self.files = files
        self.limits = limits
        self.max_bytes = limits.max_bytes
        self._uploading = 0
        self._uploading_by_user: dict[str, int] = {}

    @contextlib.contextmanager
    def upload_slot(self, user_id: str) -> Iterator[None]:
        """Hold one of the instance's and the user's upload slots; refused at once when none."""
        held = self._uploading_by_user.get(user_id, 0)
        if held >= self.limits.per_user:
            raise rate_limited(1, "Too many uploads at once; wait for one to finish.")
        if self._uploading >= self.limits.per_instance:
            raise unavailable("Too many uploads in progress; retry shortly.", retry_after=1)
        self._uploading += 1
        self._uploading_by_user[user_id] = held + 1
        try:
            yield
        finally:
            self._uploading -= 1
            left = self._uploading_by_user[user_id] - 1
            if left:
                self._uploading_by_user[user_id] = left
            else:
                del self._uploading_by_user[user_id]

    async def used_bytes(self, user_id: str) -> int:
        result = await self.store.attachments.aggregate(
            [
                {"$match": {"uploader_id": user_id}},
                {"$group": {"_id": None, "bytes": {"$sum": "$size"}}},
            ]
        )
        totals = await result.to_list()
        return int(totals[0]["bytes"]) if totals else 0

    async def upload(self, user_id: str, file: Any) -> Attachment:
        if not isinstance(file, UploadFile):
            raise invalid("file is required (a multipart file field).", "file")
        quota = self.limits.quota_bytes
        room = quota - await self.used_bytes(user_id)
        quota_details = {"quota_bytes": quota, "available_bytes": max(room, 0)}
        if room <= 0:
            raise _too_large("Your attachments use all of your storage quota.", quota_details)
        limit = min(self.max_bytes, room)
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
        if size > limit:
            raise _too_large("The file does not fit in your storage quota.", quota_details)
        stream = self.files.open_upload_stream(
            name, metadata={"attachment_id": attachment_id, "content_type": content_type}
        )
        try:
            await stream.write(head)
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > self.max_bytes:
                    raise _too_large(
                        f"An attachment is at most {self.max_bytes} bytes.",
                        {"max_bytes": self.max_bytes},
                    )
                if size > limit:
                    raise _too_large("The file does not fit in your storage quota.", quota_details)
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
                # The messages that show it: once none does (never sent, or all deleted),
                # the attachment and its file are removed.
                "message_ids": [],
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

    async def release(self, message_id: str, attachment_ids: list[str]) -> None:
        """A deleted message no longer shows these: remove those no other message shows."""
        if not attachment_ids:
            return
        await self.store.attachments.update_many(
            {"_id": {"$in": attachment_ids}}, {"$pull": {"message_ids": message_id}}
        )
        await self._remove({"_id": {"$in": attachment_ids}, "message_ids": []})

    async def sweep(self) -> int:
        """Remove attachments no message has shown for the grace period; how many went."""
        cutoff = now_ms() - timedelta(seconds=self.limits.gc_grace_seconds)
        removed = 0
        while batch := await self._remove(
            {"message_ids": [], "created_at": {"$lt": cutoff}}, limit=SWEEP_BATCH
        ):
            removed += batch
            if batch < SWEEP_BATCH:
                break
        if removed:
            log.info("unused attachments removed", extra={"count": removed})
        return removed

    async def _remove(self, query: Document, limit: int = 0) -> int:
        """Remove the attachments matching `query`, document first, then the file's bytes.

        Each delete repeats the query: one that a send has just come to show stays.
        """
        removed = 0
        for doc in await self.store.attachments.find(query, {"file_id": 1}, limit=limit).to_list():
            gone = await self.store.attachments.delete_one({**query, "_id": doc["_id"]})
            if gone.deleted_count:
                removed += 1
                with contextlib.suppress(NoFile):
                    await self.files.delete(doc["file_id"])
        return removed

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
