"""Stored documents mapped to the contract's resources (Message, Conversation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chat_contracts import Attachment, Conversation, Message
from chat_platform.mongo import Document


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now_ms() -> datetime:
    """Now, at the millisecond precision MongoDB stores, so answers match later reads."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def message_view(doc: Document) -> Message:
    return Message(
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        seq=doc["seq"],
        sender_id=doc["sender_id"],
        client_msg_id=doc["client_msg_id"],
        text=None if doc.get("deleted") else doc.get("text"),
        attachments=[] if doc.get("deleted") else [Attachment(**a) for a in doc["attachments"]],
        reply_to_id=doc.get("reply_to_id"),
        created_at=utc(doc["created_at"]),
        edited_at=utc(doc["edited_at"]) if doc.get("edited_at") else None,
        deleted=bool(doc.get("deleted")),
    )


def sent_seq(doc: Document, user_id: str) -> int:
    """The seq of the user's latest message in the conversation (0 if none).

    Sending a message reads the conversation up to it; that part of the read
    cursor lives on the conversation, written with last_seq by the same update,
    so a send costs no write to the member's cursor.
    """
    return int(doc.get("last_sent", {}).get(user_id, 0))


def conversation_view(
    doc: Document, *, viewer: str | None = None, read_seq: int = 0
) -> Conversation:
    """The conversation; with a `viewer`, as that member (with `read_seq` stored) sees it."""
    last = doc.get("last_message")
    last_seq = doc["last_seq"]
    seen = last_seq if viewer is None else min(max(read_seq, sent_seq(doc, viewer)), last_seq)
    return Conversation(
        id=doc["_id"],
        type=doc["type"],
        title=doc.get("title"),
        member_ids=list(doc["member_ids"]),
        created_at=utc(doc["created_at"]),
        updated_at=utc(doc["updated_at"]),
        last_seq=last_seq,
        last_message=message_view(last) if last else None,
        read_seq=seen,
        unread_count=last_seq - seen,
    )


def dump(model: Any) -> dict[str, Any]:
    result: dict[str, Any] = model.model_dump(mode="json")
    return result
