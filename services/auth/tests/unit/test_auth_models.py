"""Request bodies of the auth API: closed, strict, bounded."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chat_auth.users.models import LoginRequest, RefreshRequest, RegisterRequest

GOOD = {"username": "alice", "password": "correct horse"}


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"username": "abc"},
        {"username": "a" * 32},
        {"username": "Mixed.Case_name-1"},
        {"password": "p" * 8},
        {"password": "p" * 128},
        {"password": "pässwörd with spaces 🙂"},
        {"email": "alice@example.com"},
        {"email": None},
        {"display_name": "Alice Liddell"},
        {"display_name": None},
    ],
)
def test_valid_registrations(overrides: dict[str, Any]) -> None:
    body = RegisterRequest.model_validate({**GOOD, **overrides})
    assert body.username == {**GOOD, **overrides}["username"]


def test_display_name_is_trimmed() -> None:
    body = RegisterRequest.model_validate({**GOOD, "display_name": "  Alice  "})
    assert body.display_name == "Alice"


@pytest.mark.parametrize(
    "overrides",
    [
        {"username": ""},
        {"username": "ab"},
        {"username": "a" * 33},
        {"username": "has space"},
        {"username": "émile"},
        {"username": "alice\n"},
        {"username": "a/b"},
        {"username": "a@b"},
        {"username": "$where"},
        {"username": {"$gt": ""}},
        {"username": 12345},
        {"username": None},
        {"username": ["alice"]},
        {"password": ""},
        {"password": "short"},
        {"password": "p" * 129},
        {"password": {"$ne": None}},
        {"password": 12345678},
        {"password": True},
        {"email": "no-at-sign"},
        {"email": "a@b"},
        {"email": "two@@example.com"},
        {"email": "a b@example.com"},
        {"email": "x" * 65 + "@example.com"},
        {"email": "a@" + "b" * 250 + ".com"},
        {"email": "alice@example.com\n"},
        {"email": 5},
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": "d" * 65},
        {"display_name": []},
        {"is_admin": True},
        {"password_hash": "$argon2id$..."},
    ],
)
def test_invalid_registrations(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate({**GOOD, **overrides})


@pytest.mark.parametrize("missing", ["username", "password"])
def test_registration_needs_username_and_password(missing: str) -> None:
    body = dict(GOOD)
    del body[missing]
    with pytest.raises(ValidationError):
        RegisterRequest.model_validate(body)


def test_login_takes_a_username_or_an_email() -> None:
    assert LoginRequest.model_validate({"username": "alice", "password": "x"}).username == "alice"
    by_email = LoginRequest.model_validate({"username": "Alice@Example.com", "password": "x"})
    assert by_email.username == "Alice@Example.com"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "", "password": "x"},
        {"username": "alice", "password": ""},
        {"username": "u" * 255, "password": "x"},
        {"username": "alice", "password": "p" * 129},
        {"username": {"$gt": ""}, "password": {"$gt": ""}},
        {"username": "alice"},
        {"username": "alice", "password": "x", "remember": True},
        {"username": 1, "password": 2},
    ],
)
def test_invalid_logins(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LoginRequest.model_validate(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"refresh_token": ""},
        {"refresh_token": "t" * 257},
        {"refresh_token": {"$ne": None}},
        {"refresh_token": 42},
        {"refresh_token": "t", "user_id": "u1"},
    ],
)
def test_invalid_refresh_requests(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RefreshRequest.model_validate(body)
