"""HTTP routes of /v1/attachments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile
from fastapi.responses import StreamingResponse

from chat_message.attachments.service import download_headers
from chat_message.deps import Services
from chat_message.resources import dump
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/attachments")


@router.post("", status_code=201)
async def upload(file: UploadFile, services: Services, user_id: CallerId) -> dict[str, Any]:
    """Upload a file (multipart field `file`) to attach to a message."""
    return dump(await services.attachments.upload(user_id, file))


@router.get("/{attachment_id}")
async def download(attachment_id: str, services: Services, user_id: CallerId) -> StreamingResponse:
    """The file's bytes, for its uploader and the members who can see it."""
    doc = await services.attachments.readable(user_id, attachment_id)
    return StreamingResponse(
        services.attachments.download(doc["file_id"]),
        media_type=doc["content_type"],
        headers=download_headers(doc),
    )
