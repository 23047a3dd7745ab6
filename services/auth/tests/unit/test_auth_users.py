"""User documents and their public view: what is stored and what clients may see."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from chat_auth.users import store
from chat_contracts import ErrorCode, User


def test_new_user_document_keeps_lowercase_keys_for_uniqueness() -> None:
    doc = store.new_user_document("Alice", "hash", "Alice@Example.COM", None)
    assert doc["username"] == "Alice"
    assert doc["username_lower"] == "alice"
    assert doc["email_lower"] == "alice@example.com"
    assert doc["display_name"] == "Alice"
    assert doc["created_at"].tzinfo is not None
    # Stored as MongoDB keeps it (milliseconds) so the register answer equals later reads.
    assert doc["created_at"].microsecond % 1000 == 0


def test_user_without_email_has_no_email_keys() -> None:
    # The partial unique index only covers string emails: absent must mean absent, not null.
    doc = store.new_user_document("bob", "hash", None, "Bobby")
    assert "email" not in doc
    assert "email_lower" not in doc
    assert doc["display_name"] == "Bobby"


def test_public_user_shows_no_secret() -> None:
    doc = store.new_user_document("alice", "$argon2id$v=19$secret", "a@example.com", None)
    user = store.public_user(doc)
    assert isinstance(user, User)
    assert set(user.model_dump()) == {"id", "username", "display_name", "created_at"}
    assert "argon2" not in user.model_dump_json()
    assert "a@example.com" not in user.model_dump_json()


def test_public_user_reads_naive_datetimes_as_utc() -> None:
    doc = store.new_user_document("alice", "h", None, None)
    doc["created_at"] = datetime(2024, 1, 1, 12, 0)
    assert store.public_user(doc).created_at == datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_registered_event_carries_the_public_user() -> None:
    doc = store.new_user_document("alice", "$argon2id$secret", None, None)
    event = store.registered_event(doc)
    assert event.user == store.public_user(doc)
    assert "argon2" not in event.model_dump_json()


def test_duplicate_key_errors_name_the_field_that_clashed() -> None:
    by_email = DuplicateKeyError(
        "E11000 duplicate key error index: email_unique",
        11000,
        {"keyPattern": {"email_lower": 1}, "keyValue": {"email_lower": "a@b.c"}},
    )
    by_name = DuplicateKeyError(
        "E11000 duplicate key error index: username_unique",
        11000,
        {"keyPattern": {"username_lower": 1}, "keyValue": {"username_lower": "alice"}},
    )
    assert store.duplicate_error(by_email).code is ErrorCode.CONFLICT
    assert store.duplicate_error(by_name).code is ErrorCode.USERNAME_TAKEN
