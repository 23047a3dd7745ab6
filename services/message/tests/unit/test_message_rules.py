"""The rules that need no database: ids, list cursors, seq bounds, send shapes, request bodies."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from chat_contracts import ErrorCode
from chat_contracts.commands import MoveCursor
from chat_contracts.errors import ApiError
from chat_contracts.socket import MessageContent
from chat_message.conversations.models import AddMembers, CreateDirect, CreateGroup
from chat_message.conversations.service import _decode_cursor, _encode_cursor
from chat_message.ids import is_id, new_id
from chat_message.messages.models import EditMessage
from chat_message.messages.rules import Send, SendLimits, check_content, dedup_key
from chat_message.messages.service import _check_seq_cursor
from chat_message.sync.service import _since_utc

CONVERSATION = "65a000000000000000000001"


def b64(raw: Any) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw)
    return base64.urlsafe_b64encode(text.encode()).decode()


def assert_api_error(exc: pytest.ExceptionInfo[ApiError], code: ErrorCode) -> None:
    assert exc.value.code == code
    assert exc.value.status == {"validation_error": 422, "not_found": 404}[code.value]


# --- ids ------------------------------------------------------------------------------------


def test_new_ids_are_valid_ids() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_id(i) for i in ids)


@pytest.mark.parametrize(
    "value",
    ["", "nope", "65A000000000000000000001", "65a00000000000000000000", "65a0000000000000000000011",
     "65a00000000000000000000g", " 65a000000000000000000001", {"$gt": ""}, 42, None],
)  # fmt: skip
def test_anything_but_a_lowercase_object_id_is_not_an_id(value: object) -> None:
    assert not is_id(value)


# --- conversation list cursors --------------------------------------------------------------


def test_a_list_cursor_round_trips() -> None:
    updated = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    cursor = _encode_cursor({"updated_at": updated, "_id": CONVERSATION})
    assert _decode_cursor(cursor) == (updated, CONVERSATION)


def test_a_cursor_from_a_naive_stored_time_is_utc() -> None:
    cursor = _encode_cursor({"updated_at": datetime(2024, 5, 1, 12, 0), "_id": CONVERSATION})
    assert _decode_cursor(cursor)[0] == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_a_cursor_with_an_offset_comes_back_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment, _ = _decode_cursor(b64([datetime(2024, 5, 1, 14, 0, tzinfo=plus_two).isoformat(), "x"]))
    assert moment.utcoffset() == timedelta(0)
    assert moment == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not base64 at all!", id="garbage"),
        pytest.param(b64("not json"), id="not-json"),
        pytest.param(b64(42), id="number"),
        pytest.param(b64(["2024-05-01T12:00:00+00:00"]), id="one-part"),
        pytest.param(b64(["2024-05-01T12:00:00+00:00", "a", "b"]), id="three-parts"),
        pytest.param(b64([1714564800, "a"]), id="time-not-a-string"),
        pytest.param(b64(["yesterday", "a"]), id="time-not-iso"),
        pytest.param(b64({"a": 1, "b": 2}), id="object"),
        pytest.param(b64(["0001-01-01T00:00:00+01:00", "a"]), id="before-year-one-in-utc"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
    ],
)
def test_a_forged_cursor_is_a_validation_error(cursor: str) -> None:
    with pytest.raises(ApiError) as exc:
        _decode_cursor(cursor)
    assert_api_error(exc, ErrorCode.VALIDATION_ERROR)


# --- seq bounds -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "upper"), [(None, 5), (0, 5), (5, 5), (6, 6)])
def test_seq_cursors_within_bounds_pass(value: int | None, upper: int) -> None:
    _check_seq_cursor("after_seq", value, 5, upper=upper)


@pytest.mark.parametrize(("value", "upper"), [(-1, 5), (6, 5), (7, 6), (2**70, 5)])
def test_seq_cursors_out_of_bounds_are_refused(value: int, upper: int) -> None:
    with pytest.raises(ApiError) as exc:
        _check_seq_cursor("after_seq", value, 5, upper=upper)
    assert_api_error(exc, ErrorCode.VALIDATION_ERROR)
    assert exc.value.details == {"fields": [{"field": "after_seq", "problem": exc.value.message}]}


# --- the shape of a send, before it is queued ----------------------------------------------


def send(conversation_id: str = CONVERSATION, **fields: Any) -> Send:
    content = MessageContent.model_validate({"client_msg_id": "k1", **fields})
    return Send("u1", conversation_id, content)


LIMITS = SendLimits(max_text_chars=10, max_attachments=2)


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(send(text="x" * 10), id="text-at-limit"),
        pytest.param(send(attachment_ids=["a1"]), id="attachment-only"),
        pytest.param(send(text=" ", attachment_ids=["a1"]), id="blank-text-with-attachment"),
    ],
)
def test_acceptable_shapes_pass(request_: Send) -> None:
    check_content(request_, LIMITS)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        pytest.param(send(text="x" * 11), ErrorCode.VALIDATION_ERROR, id="text-too-long"),
        pytest.param(send(), ErrorCode.VALIDATION_ERROR, id="nothing"),
        pytest.param(send(text=" \n\t"), ErrorCode.VALIDATION_ERROR, id="blank-text"),
        pytest.param(send(text=""), ErrorCode.VALIDATION_ERROR, id="empty-text"),
        pytest.param(
            send(text="x", attachment_ids=["a", "b", "c"]),
            ErrorCode.VALIDATION_ERROR,
            id="too-many-attachments",
        ),
        pytest.param(
            send(text="x", attachment_ids=["a", "a"]),
            ErrorCode.VALIDATION_ERROR,
            id="duplicate-attachments",
        ),
        pytest.param(send("not-an-id", text="x"), ErrorCode.NOT_FOUND, id="malformed-id"),
    ],
)
def test_bad_shapes_are_refused_before_the_queue(request_: Send, code: ErrorCode) -> None:
    with pytest.raises(ApiError) as exc:
        check_content(request_, LIMITS)
    assert_api_error(exc, code)


def test_dedup_is_per_sender() -> None:
    assert dedup_key("u1", "k") != dedup_key("u2", "k")
    assert dedup_key("u1", "k") == dedup_key("u1", "k")


# --- request bodies are closed and strict --------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (MessageContent, {"client_msg_id": "k", "text": "x", "extra": 1}),
        (MessageContent, {"client_msg_id": "k", "text": 5}),
        (MessageContent, {"client_msg_id": 5, "text": "x"}),
        (MessageContent, {"client_msg_id": "", "text": "x"}),
        (MessageContent, {"client_msg_id": "k" * 65, "text": "x"}),
        (MessageContent, {"client_msg_id": "k", "attachment_ids": "a1"}),
        (MessageContent, {"client_msg_id": "k", "attachment_ids": [""]}),
        (MessageContent, {"text": "x"}),
        (EditMessage, {"text": None}),
        (EditMessage, {"text": "x", "deleted": True}),
        (CreateDirect, {"type": "direct", "member_ids": ["a", "b"]}),
        (CreateDirect, {"type": "direct", "member_ids": []}),
        (CreateGroup, {"type": "group", "title": "   ", "member_ids": []}),
        (CreateGroup, {"type": "group", "title": "t" * 101, "member_ids": []}),
        (CreateGroup, {"type": "group", "member_ids": []}),
        (AddMembers, {"user_ids": []}),
        (MoveCursor, {"user_id": "u", "conversation_id": "c", "seq": -1, "kind": "read"}),
        (MoveCursor, {"user_id": "u", "conversation_id": "c", "seq": "1", "kind": "read"}),
        (MoveCursor, {"user_id": "u", "conversation_id": "c", "seq": True, "kind": "read"}),
        (MoveCursor, {"user_id": "u", "conversation_id": "c", "seq": 1, "kind": "seen"}),
    ],
)
def test_bodies_are_closed_and_strict(model: type[Any], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_a_group_title_is_trimmed() -> None:
    assert (
        CreateGroup.model_validate({"type": "group", "title": " t ", "member_ids": []}).title == "t"
    )


# --- sync's `since` --------------------------------------------------------------------------


def test_since_is_compared_in_utc() -> None:
    assert _since_utc(None) is None
    assert _since_utc(datetime(2024, 5, 1, 12, 0)) == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert _since_utc(datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)) == datetime(
        2024, 5, 1, 12, 0, tzinfo=UTC
    )


def test_a_since_before_year_one_in_utc_is_a_validation_error() -> None:
    with pytest.raises(ApiError) as exc:
        _since_utc(datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=1))))
    assert_api_error(exc, ErrorCode.VALIDATION_ERROR)
