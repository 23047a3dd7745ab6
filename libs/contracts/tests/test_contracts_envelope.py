"""Envelopes, events and error bodies: round trips and what they refuse."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chat_contracts import (
    EVENT_TYPES,
    HTTP_STATUS,
    ApiError,
    ConversationUpdated,
    Envelope,
    ErrorBody,
    ErrorCode,
    ErrorDetail,
    Event,
    Message,
    MessageCreated,
    PresenceChanged,
    ReceiptUpdated,
    UnknownEventError,
    User,
    UserBlocked,
    UserRegistered,
    UserSettings,
    UserSettingsChanged,
    UserUnblocked,
    error_body,
)
from chat_contracts.commands import (
    COMMANDS,
    Answer,
    MessageSent,
    MoveCursor,
    SendMessage,
    UserContacts,
)
from chat_contracts.models import Conversation
from chat_contracts.socket import SendMessagePayload

NOW = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
USER = User(id="u1", username="alice", display_name="Alice", created_at=NOW)
MESSAGE = Message(
    id="m1",
    conversation_id="c1",
    seq=1,
    sender_id="u1",
    client_msg_id="k1",
    text="hi",
    attachments=[],
    reply_to_id=None,
    created_at=NOW,
    edited_at=None,
    deleted=False,
)
CONVERSATION = Conversation(
    id="c1",
    type="direct",
    title=None,
    member_ids=["u1", "u2"],
    created_at=NOW,
    updated_at=NOW,
    last_seq=1,
    last_message=MESSAGE,
)

SAMPLES: list[Event] = [
    UserRegistered(user=USER),
    ConversationUpdated(conversation=CONVERSATION, removed_member_ids=["u3"]),
    MessageCreated(message=MESSAGE, member_ids=["u1", "u2"]),
    ReceiptUpdated(conversation_id="c1", user_id="u2", kind="read", seq=1, member_ids=["u1"]),
    PresenceChanged(user_id="u1", online=False, last_seen=NOW),
    UserBlocked(blocker_id="u1", blocked_id="u2"),
    UserUnblocked(blocker_id="u1", blocked_id="u2"),
    UserSettingsChanged(
        user_id="u1", settings=UserSettings(presence_visible_to="nobody", push_previews=False)
    ),
]


def test_samples_cover_the_event_kinds() -> None:
    # message.updated/deleted share MessageCreated's shape; the rest each have a sample.
    assert {e.type for e in SAMPLES} | {"message.updated", "message.deleted"} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.type)
def test_wrap_then_unwrap_gives_the_same_event(event: Event) -> None:
    envelope = Envelope.wrap(event, "test")
    assert envelope.type == event.type
    assert envelope.version == event.version
    assert envelope.producer == "test"
    assert envelope.occurred_at.tzinfo is not None
    # Through JSON, as it travels over RabbitMQ.
    received = Envelope.model_validate_json(envelope.model_dump_json())
    assert received == envelope
    assert received.unwrap() == event
    assert type(received.unwrap()) is type(event)


def test_each_envelope_gets_a_fresh_id_unless_given_one() -> None:
    event = SAMPLES[0]
    ids = {Envelope.wrap(event, "test").id for _ in range(50)}
    assert len(ids) == 50
    assert Envelope.wrap(event, "test", event_id="fixed").id == "fixed"


def _envelope(**overrides: Any) -> dict[str, Any]:
    body = Envelope.wrap(UserRegistered(user=USER), "test").model_dump(mode="json")
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("event_type", "version"),
    [("user.deleted", 1), ("user.registered", 2), ("", 1), ("USER.REGISTERED", 1)],
)
def test_unknown_type_or_version_is_refused(event_type: str, version: int) -> None:
    envelope = Envelope.model_validate(_envelope(type=event_type, version=version))
    with pytest.raises(UnknownEventError):
        envelope.unwrap()


def test_extra_envelope_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        Envelope.model_validate(_envelope(priority="high"))


def test_extra_event_field_is_refused_on_unwrap() -> None:
    data = _envelope()["data"]
    data["user"]["password_hash"] = "$argon2id$..."
    with pytest.raises(ValidationError, match="extra"):
        Envelope.model_validate(_envelope(data=data)).unwrap()


def test_data_of_another_type_is_refused_on_unwrap() -> None:
    wrong = Envelope.wrap(PresenceChanged(user_id="u1", online=True, last_seen=None), "test")
    relabelled = Envelope.model_validate(_envelope(data=wrong.data))
    with pytest.raises(ValidationError):
        relabelled.unwrap()


@pytest.mark.parametrize("missing", ["id", "type", "version", "occurred_at", "producer", "data"])
def test_envelope_without_a_field_is_refused(missing: str) -> None:
    body = _envelope()
    del body[missing]
    with pytest.raises(ValidationError):
        Envelope.model_validate(body)


def test_events_are_immutable() -> None:
    event = PresenceChanged(user_id="u1", online=True, last_seen=None)
    with pytest.raises(ValidationError):
        event.online = False  # type: ignore[misc]


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)
    assert HTTP_STATUS[ErrorCode.VALIDATION_ERROR] == 422
    assert HTTP_STATUS[ErrorCode.RATE_LIMITED] == 429


def test_error_body_has_the_contract_shape() -> None:
    assert error_body(ErrorCode.NOT_FOUND, "User not found.") == {
        "error": {"code": "not_found", "message": "User not found."}
    }
    with_details = error_body(ErrorCode.RATE_LIMITED, "Slow down.", {"retry_after": 3})
    assert with_details == {
        "error": {"code": "rate_limited", "message": "Slow down.", "details": {"retry_after": 3}}
    }
    assert ErrorBody.model_validate(with_details).error.code is ErrorCode.RATE_LIMITED


def test_error_body_refuses_unknown_codes() -> None:
    with pytest.raises(ValidationError):
        ErrorBody.model_validate({"error": {"code": "oops", "message": "?"}})


def test_api_error_renders_for_http_commands_and_acks_alike() -> None:
    error = ApiError(ErrorCode.RATE_LIMITED, "Slow down.", {"retry_after": 3})
    assert error.status == 429
    assert error.headers == {"Retry-After": "3"}
    assert error.body() == {
        "error": {"code": "rate_limited", "message": "Slow down.", "details": {"retry_after": 3}}
    }
    assert error.ack() == {"ok": False, **error.body()}
    again = ApiError.from_detail(ErrorDetail.model_validate_json(error.detail().model_dump_json()))
    assert (again.code, again.message, again.details) == (error.code, error.message, error.details)
    assert ApiError(ErrorCode.NOT_FOUND, "Gone.").headers is None


def test_commands_round_trip_with_their_typed_replies() -> None:
    payload = SendMessagePayload(conversation_id="c1", client_msg_id="k1", text="hi")
    command = SendMessage(sender_id="u1", request=payload)
    assert COMMANDS[command.name] is SendMessage
    assert SendMessage.model_validate_json(command.model_dump_json()) == command
    answer = Answer[MessageSent](ok=True, result=MessageSent(message=MESSAGE, created=True))
    parsed = Answer[MessageSent].model_validate_json(answer.model_dump_json())
    assert parsed.result is not None
    assert parsed.result.message == MESSAGE


def test_commands_refuse_unknown_fields_and_loose_types() -> None:
    with pytest.raises(ValidationError):
        MoveCursor.model_validate_json(
            '{"user_id": "u1", "conversation_id": "c1", "seq": "3", "kind": "read"}'
        )
    with pytest.raises(ValidationError):
        UserContacts.model_validate_json('{"user_id": "u1", "extra": 1}')
    with pytest.raises(ValidationError):
        MoveCursor.model_validate_json(
            f'{{"user_id": "u1", "conversation_id": "c1", "seq": {2**63}, "kind": "read"}}'
        )
