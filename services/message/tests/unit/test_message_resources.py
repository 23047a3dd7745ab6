"""Stored documents as the contract's resources: tombstones, per-user counters, times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chat_message.resources import conversation_view, message_view, now_ms

CREATED = datetime(2024, 5, 1, 12, 0, 0, 123000)  # naive, as a client without tz_aware reads it


def message_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": "m1",
        "conversation_id": "c1",
        "seq": 3,
        "sender_id": "u1",
        "client_msg_id": "k1",
        "dedup_key": "u1:k1",
        "text": "hello",
        "attachments": [{"id": "a1", "name": "p.png", "content_type": "image/png", "size": 9}],
        "reply_to_id": None,
        "created_at": CREATED,
        "updated_at": CREATED,
        "edited_at": None,
        "deleted": False,
    }
    return {**doc, **changes}


def conversation_doc(last_seq: int = 7) -> dict[str, Any]:
    return {
        "_id": "c1",
        "type": "group",
        "title": "t",
        "owner_id": "u1",
        "member_ids": ["u1", "u2"],
        "created_at": CREATED,
        "updated_at": CREATED,
        "last_seq": last_seq,
        "last_message": message_doc(seq=last_seq) if last_seq else None,
    }


def test_message_view_is_the_contract_message() -> None:
    view = message_view(message_doc())
    assert view.id == "m1"
    assert view.seq == 3
    assert view.text == "hello"
    assert [a.id for a in view.attachments] == ["a1"]
    assert view.created_at == CREATED.replace(tzinfo=UTC)
    assert view.edited_at is None
    assert not view.deleted
    assert "dedup_key" not in view.model_dump()


def test_a_deleted_message_is_a_tombstone_even_if_content_remains_stored() -> None:
    view = message_view(message_doc(deleted=True))
    assert view.deleted
    assert view.text is None
    assert view.attachments == []
    assert view.seq == 3


def test_edited_at_is_utc() -> None:
    view = message_view(message_doc(edited_at=datetime(2024, 5, 2, 8, 0)))
    assert view.edited_at == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("read_seq", "expected_read", "expected_unread"),
    [(0, 0, 7), (4, 4, 3), (7, 7, 0), (12, 7, 0)],
)
def test_unread_is_last_seq_minus_read_seq(
    read_seq: int, expected_read: int, expected_unread: int
) -> None:
    view = conversation_view(conversation_doc(7), viewer="u2", read_seq=read_seq)
    assert (view.read_seq, view.unread_count) == (expected_read, expected_unread)
    assert view.last_seq == 7
    assert view.last_message is not None
    assert view.last_message.seq == 7


def test_without_a_viewer_nothing_is_unread() -> None:
    view = conversation_view(conversation_doc(7))
    assert (view.read_seq, view.unread_count) == (7, 0)


@pytest.mark.parametrize(
    ("read_seq", "sent", "expected_read"),
    [(0, 5, 5), (6, 5, 6), (2, 0, 2)],
)
def test_own_messages_count_as_read(read_seq: int, sent: int, expected_read: int) -> None:
    doc = {**conversation_doc(7), "last_sent": {"u2": sent} if sent else {}}
    view = conversation_view(doc, viewer="u2", read_seq=read_seq)
    assert (view.read_seq, view.unread_count) == (expected_read, 7 - expected_read)


def test_an_empty_conversation_has_no_last_message() -> None:
    view = conversation_view(conversation_doc(0), read_seq=0)
    assert view.last_message is None
    assert (view.last_seq, view.unread_count) == (0, 0)


def test_now_ms_has_the_precision_mongodb_stores() -> None:
    now = now_ms()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0
