"""Request bodies of the user endpoints, closed and strict (no coercion of other types)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Username = Annotated[
    str, StringConstraints(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RegisterRequest(Request):
    username: Username
    password: Password
    email: Email | None = None
    display_name: DisplayName | None = None


class LoginRequest(Request):
    username: Annotated[str, StringConstraints(min_length=1, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class RefreshRequest(Request):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]
