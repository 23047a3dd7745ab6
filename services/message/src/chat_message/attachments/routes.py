"""HTTP routes of /v1/attachments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile
from fastapi.responses import StreamingResponse

from chat_message.attachments import service
from chat_message.deps import Ctx, UserId
from chat_message.views import dump

router = APIRouter(prefix="/v1/attachments")


@router.post("", status_code=201)
async def upload(file: UploadFile, ctx: Ctx, user_id: UserId) -> dict[str, Any]:
    """Upload a file (multipart field `file`) to attach to a message."""
    return dump(await service.upload(ctx, user_id, file))


@router.get("/{attachment_id}")
async def download(attachment_id: str, ctx: Ctx, user_id: UserId) -> StreamingResponse:
    """The file's bytes, for its uploader and the members who can see it."""
    doc = await service.readable_attachment(ctx, user_id, attachment_id)
    return StreamingResponse(
        service.download(ctx, doc["file_id"]),
        media_type=doc["content_type"],
        headers=service.download_headers(doc),
    )
