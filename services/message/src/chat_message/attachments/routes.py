"""HTTP routes of /v1/attachments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.formparsers import MultiPartException

from chat_contracts.errors import invalid
from chat_message.attachments.service import download_headers
from chat_message.deps import Services, budget
from chat_message.resources import dump
from chat_platform.authn import CallerId

router = APIRouter(prefix="/v1/attachments")

# The body is read by hand (after the upload slots are taken), so it is declared here.
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        }
    },
}


@router.post(
    "",
    status_code=201,
    dependencies=[budget("attachment:upload")],
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload(request: Request, services: Services, user_id: CallerId) -> dict[str, Any]:
    """Upload a file (multipart field `file`) to attach to a message."""
    attachments = services.attachments
    # The slot first: a refused upload is answered before any of its body is read.
    with attachments.upload_slot(user_id):
        try:
            form = await request.form(max_files=1, max_fields=8)
        except (MultiPartException, ValueError, KeyError) as exc:
            raise invalid("The body is not a multipart form with a file.", "file") from exc
        try:
            return dump(await attachments.upload(user_id, form.get("file")))
        finally:
            await form.close()


@router.get("/{attachment_id}", dependencies=[budget("attachment:download")])
async def download(attachment_id: str, services: Services, user_id: CallerId) -> StreamingResponse:
    """The file's bytes, for its uploader and the members who can see it."""
    doc = await services.attachments.readable(user_id, attachment_id)
    return StreamingResponse(
        services.attachments.download(doc["file_id"]),
        media_type=doc["content_type"],
        headers=download_headers(doc),
    )
