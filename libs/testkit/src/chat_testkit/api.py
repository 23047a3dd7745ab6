"""The chat's REST API as the tests speak it: users at the auth service, the rest at message.

`ChatApi` registers and logs in users at the auth service and acts as any of
them at the message service. The verbs (`get`, `post`, ...) return the raw
response for tests about errors; the use cases (`direct`, `sent`, ...) assert
success and return the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

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


def new_client_msg_id() -> str:
    return uuid.uuid4().hex


def _body(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:2000])
    return dict(response.json())


class ChatApi:
    """The auth and message services over HTTP, acting as whichever user a call names."""

    def __init__(self, http: httpx.AsyncClient, *, auth_url: str, message_url: str) -> None:
        self.http = http
        self.auth_url = auth_url.rstrip("/")
        self.message_url = message_url.rstrip("/")

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, *, auth_url: str, message_url: str) -> AsyncIterator[ChatApi]:
        """A `ChatApi` on an HTTP client of its own, closed on exit.

        Its pool is large enough for the hundreds of concurrent requests a
        concurrency test makes.
        """
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            yield cls(http, auth_url=auth_url, message_url=message_url)

    # --- the auth service ---------------------------------------------------------------------

    async def register(
        self, prefix: str = "u", *, username: str | None = None, display_name: str | None = None
    ) -> User:
        """A new user, named `<prefix><random>` unless `username` is given, with the kit's password."""
        name = username or f"{prefix}{uuid.uuid4().hex[:10]}"
        fields = {"username": name, "password": PASSWORD}
        if display_name is not None:
            fields["display_name"] = display_name
        response = await self.http.post(f"{self.auth_url}/v1/auth/register", json=fields)
        body = _body(response, 201)
        return User(body["user"]["id"], name, body["access_token"])

    async def register_many(self, n: int, prefix: str = "u") -> list[User]:
        return list(await asyncio.gather(*(self.register(prefix) for _ in range(n))))

    async def login(self, user: User, auth_url: str | None = None) -> str:
        """A fresh access token for `user`, from `auth_url` (another auth instance) if given."""
        response = await self.http.post(
            f"{(auth_url or self.auth_url).rstrip('/')}/v1/auth/login",
            json={"username": user.username, "password": PASSWORD},
        )
        return str(_body(response, 200)["access_token"])

    # --- the message service, raw -------------------------------------------------------------

    async def request(
        self, user: User | None, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {**(user.headers if user else {}), **kwargs.pop("headers", {})}
        return await self.http.request(
            method, f"{self.message_url}{path}", headers=headers, **kwargs
        )

    async def get(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "GET", path, **kwargs)

    async def post(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "POST", path, **kwargs)

    async def patch(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "PATCH", path, **kwargs)

    async def delete(self, user: User | None, path: str, **kwargs: Any) -> httpx.Response:
        return await self.request(user, "DELETE", path, **kwargs)

    # --- conversations, asserting success -----------------------------------------------------

    async def direct(self, user: User, other: User) -> dict[str, Any]:
        """The direct conversation of the two (201 when new, 200 when it already existed)."""
        response = await self.post(
            user, "/v1/conversations", json={"type": "direct", "member_ids": [other.id]}
        )
        return _body(response, 200, 201)

    async def group(self, owner: User, members: Iterable[User], title: str = "g") -> dict[str, Any]:
        response = await self.post(
            owner,
            "/v1/conversations",
            json={"type": "group", "title": title, "member_ids": [m.id for m in members]},
        )
        return _body(response, 201)

    async def conversation(self, user: User, conversation_id: str) -> dict[str, Any]:
        return _body(await self.get(user, f"/v1/conversations/{conversation_id}"), 200)

    async def add_members(
        self, actor: User, conversation_id: str, users: Iterable[User]
    ) -> dict[str, Any]:
        response = await self.post(
            actor,
            f"/v1/conversations/{conversation_id}/members",
            json={"user_ids": [u.id for u in users]},
        )
        return _body(response, 200)

    async def remove_member(self, actor: User, conversation_id: str, user: User) -> None:
        response = await self.delete(
            actor, f"/v1/conversations/{conversation_id}/members/{user.id}"
        )
        assert response.status_code == 204, response.text

    # --- messages -----------------------------------------------------------------------------

    async def send(
        self, user: User, conversation_id: str, text: str | None = "hello", **body: Any
    ) -> httpx.Response:
        """POST a message (a fresh `client_msg_id` unless given); the response, whatever it is."""
        payload = {"client_msg_id": body.pop("client_msg_id", new_client_msg_id()), **body}
        if text is not None:
            payload["text"] = text
        return await self.post(user, f"/v1/conversations/{conversation_id}/messages", json=payload)

    async def sent(
        self, user: User, conversation_id: str, text: str | None = "hello", **body: Any
    ) -> dict[str, Any]:
        """`send` that must be stored: the message."""
        return _body(await self.send(user, conversation_id, text, **body), 201)

    async def edit_message(
        self, user: User, conversation_id: str, message_id: str, text: str
    ) -> dict[str, Any]:
        response = await self.patch(
            user,
            f"/v1/conversations/{conversation_id}/messages/{message_id}",
            json={"text": text},
        )
        return _body(response, 200)

    async def delete_message(self, user: User, conversation_id: str, message_id: str) -> None:
        response = await self.delete(
            user, f"/v1/conversations/{conversation_id}/messages/{message_id}"
        )
        assert response.status_code == 204, response.text

    async def history(self, user: User, conversation_id: str, **params: Any) -> dict[str, Any]:
        """One page of the conversation's messages (`after_seq`, `before_seq`, `limit`...)."""
        response = await self.get(
            user, f"/v1/conversations/{conversation_id}/messages", params=params
        )
        return _body(response, 200)

    async def all_messages(self, user: User, conversation_id: str) -> list[dict[str, Any]]:
        """Every message of the conversation, ascending by seq, across pages."""
        items: list[dict[str, Any]] = []
        while True:
            page = await self.history(
                user, conversation_id, after_seq=items[-1]["seq"] if items else 0, limit=200
            )
            items += page["items"]
            if not page["has_more"]:
                return items

    async def upload(
        self, user: User, content: bytes, name: str = "pic.png", content_type: str = "image/png"
    ) -> httpx.Response:
        return await self.post(
            user, "/v1/attachments", files={"file": (name, content, content_type)}
        )
