"""Users made through the auth service's public API, for black-box tests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx

PASSWORD = "correct horse battery"  # noqa: S105 - a test account's, on loopback servers


@dataclass(frozen=True)
class User:
    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register_user(http: httpx.AsyncClient, auth_url: str, prefix: str = "u") -> User:
    """A new user with a unique name `<prefix><random>` and the kit's password."""
    username = f"{prefix}{uuid.uuid4().hex[:10]}"
    response = await http.post(
        f"{auth_url.rstrip('/')}/v1/auth/register",
        json={"username": username, "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return User(body["user"]["id"], username, body["access_token"])


async def register_users(
    http: httpx.AsyncClient, auth_url: str, n: int, prefix: str = "u"
) -> list[User]:
    return list(await asyncio.gather(*(register_user(http, auth_url, prefix) for _ in range(n))))
