"""Users and conversations for a scenario, made through the public REST API.

Registering costs the auth service an argon2 hash per user, slow by design, so
users are made with limited concurrency, outside every measurement, and their
refresh tokens are kept in `.dev/bench/users-<stack>.json` when the database
outlives the run: a rerun against the same stack refreshes them (no hashing)
instead of registering again. A user whose refresh fails (the database was
reset, the token rotated elsewhere) is registered again, or logged in when the
name is taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

# Every bench user's password: they are throwaway accounts on a test stack.
PASSWORD = "bench-password-0"  # noqa: S105
A = TypeVar("A")
T = TypeVar("T")


class SetupError(RuntimeError):
    pass


@dataclass
class User:
    index: int
    id: str
    username: str
    token: str
    refresh_token: str
    token_at: float = field(default_factory=time.time)


@dataclass
class Conversation:
    id: str
    kind: str
    members: list[int]  # user indices


@dataclass
class SetupStats:
    registered: int = 0
    logged_in: int = 0
    refreshed: int = 0
    conversations: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "registered": self.registered,
            "logged_in": self.logged_in,
            "refreshed": self.refreshed,
            "conversations": self.conversations,
            "seconds": round(self.seconds, 2),
        }


def cache_path(cache_dir: Path, auth_url: str, db: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{auth_url.split('://')[-1]}-{db}")
    return cache_dir / f"users-{slug}.json"


async def _bounded(limit: int, job: Callable[[A], Awaitable[T]], items: Iterable[A]) -> list[T]:
    """`job(item)` for every item, at most `limit` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def run(item: A) -> T:
        async with semaphore:
            return await job(item)

    return list(await asyncio.gather(*(run(item) for item in items)))


def _error(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, AttributeError, KeyError, TypeError):
        return str(response.json()["error"]["code"])
    return f"http_{response.status_code}"


class Population:
    """The bench's users (a shared pool, `bench_00000`...) and the conversations it made."""

    def __init__(self, auth_url: str, message_url: str, cache: Path | None) -> None:
        self.auth_url = auth_url.rstrip("/")
        self.message_url = message_url.rstrip("/")
        self.cache = cache
        self.users: list[User] = []
        self.stats = SetupStats()
        self.http = httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=64, max_keepalive_connections=64)
        )

    async def close(self) -> None:
        await self.http.aclose()

    # --- users ------------------------------------------------------------------------------

    def _load_cache(self) -> dict[str, dict[str, str]]:
        if self.cache is None or not self.cache.exists():
            return {}
        try:
            data = json.loads(self.cache.read_text())
        except ValueError:
            return {}
        return dict(data.get("users", {}))

    def _save_cache(self) -> None:
        if self.cache is None:
            return
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "auth_url": self.auth_url,
            "users": {
                u.username: {"id": u.id, "refresh_token": u.refresh_token} for u in self.users
            },
        }
        tmp = self.cache.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.cache)

    def _user(self, index: int, body: dict[str, Any]) -> User:
        return User(
            index=index,
            id=str(body["user"]["id"]),
            username=str(body["user"]["username"]),
            token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
        )

    async def _refresh(self, index: int, refresh_token: str) -> User | None:
        response = await self.http.post(
            f"{self.auth_url}/v1/auth/refresh", json={"refresh_token": refresh_token}
        )
        if response.status_code != 200:
            return None
        body = response.json()
        if "user" not in body:
            me = await self.http.get(
                f"{self.auth_url}/v1/users/me",
                headers={"Authorization": f"Bearer {body['access_token']}"},
            )
            body["user"] = me.json()
        return self._user(index, body)

    async def _register_or_login(self, index: int, username: str) -> User:
        credentials = {"username": username, "password": PASSWORD}
        response = await self.http.post(f"{self.auth_url}/v1/auth/register", json=credentials)
        if response.status_code == 201:
            self.stats.registered += 1
            return self._user(index, response.json())
        if response.status_code != 409:
            raise SetupError(f"register {username}: {response.status_code} {_error(response)}")
        response = await self.http.post(f"{self.auth_url}/v1/auth/login", json=credentials)
        if response.status_code != 200:
            raise SetupError(f"login {username}: {response.status_code} {_error(response)}")
        self.stats.logged_in += 1
        return self._user(index, response.json())

    async def ensure_users(self, count: int, concurrency: int = 8) -> list[User]:
        """The first `count` users of the pool, with fresh access tokens."""
        if len(self.users) >= count:
            return self.users[:count]
        started = time.monotonic()
        cached = self._load_cache()

        async def one(index: int) -> User:
            username = f"bench_{index:05d}"
            entry = cached.get(username)
            if entry:
                user = await self._refresh(index, entry["refresh_token"])
                if user is not None:
                    self.stats.refreshed += 1
                    return user
            return await self._register_or_login(index, username)

        first = len(self.users)
        made = await _bounded(concurrency, one, range(first, count))
        self.users.extend(made)
        self._save_cache()
        self.stats.seconds += time.monotonic() - started
        return self.users[:count]

    async def refresh_older_than(self, seconds: float, concurrency: int = 16) -> None:
        """New access tokens for users whose token is older than `seconds` (long runs)."""
        stale = [u for u in self.users if time.time() - u.token_at > seconds]
        if not stale:
            return

        async def one(user: User) -> None:
            fresh = await self._refresh(user.index, user.refresh_token)
            if fresh is None:
                fresh = await self._register_or_login(user.index, user.username)
            self.users[user.index] = fresh

        await _bounded(concurrency, one, stale)
        self._save_cache()

    # --- conversations --------------------------------------------------------------------------

    async def _create(self, owner: User, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.message_url}/v1/conversations",
            json=body,
            headers={"Authorization": f"Bearer {owner.token}"},
        )
        if response.status_code not in (200, 201):
            raise SetupError(f"create conversation: {response.status_code} {_error(response)}")
        self.stats.conversations += 1
        return dict(response.json())

    async def direct_ring(self, users: list[User], per_user: int) -> list[Conversation]:
        """Each user talks to its `per_user` nearest neighbours on a ring (per_user/2 each side)."""
        pairs: set[tuple[int, int]] = set()
        n = len(users)
        for i in range(n):
            for step in range(1, max(1, per_user // 2) + 1):
                j = (i + step) % n
                if i != j:
                    pairs.add((min(i, j), max(i, j)))
        started = time.monotonic()

        async def one(pair: tuple[int, int]) -> Conversation:
            a, b = pair
            body = await self._create(users[a], {"type": "direct", "member_ids": [users[b].id]})
            return Conversation(str(body["id"]), "direct", [a, b])

        made = await _bounded(16, one, sorted(pairs))
        self.stats.seconds += time.monotonic() - started
        return made

    async def groups(self, users: list[User], groups: int, members: int) -> list[Conversation]:
        started = time.monotonic()

        async def one(g: int) -> Conversation:
            indices = [(g * members + k) % len(users) for k in range(members)]
            owner = users[indices[0]]
            body = await self._create(
                owner,
                {
                    "type": "group",
                    "title": f"bench group {g}",
                    "member_ids": [users[i].id for i in indices[1:]],
                },
            )
            return Conversation(str(body["id"]), "group", indices)

        made = await _bounded(4, one, range(groups))
        self.stats.seconds += time.monotonic() - started
        return made

    async def last_seqs(self, conversations: list[Conversation]) -> dict[str, int]:
        """Each conversation's last seq now: a scenario's messages are the ones after it."""

        async def one(conversation: Conversation) -> tuple[str, int]:
            member = self.users[conversation.members[0]]
            response = await self.http.get(
                f"{self.message_url}/v1/conversations/{conversation.id}",
                headers={"Authorization": f"Bearer {member.token}"},
            )
            if response.status_code != 200:
                raise SetupError(f"read conversation: {response.status_code} {_error(response)}")
            return conversation.id, int(response.json().get("last_seq") or 0)

        return dict(await _bounded(16, one, conversations))
