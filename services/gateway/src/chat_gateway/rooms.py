"""Socket.IO room names. Every device of a user joins that user's room."""

from __future__ import annotations

from collections.abc import Iterable


def user_room(user_id: str) -> str:
    return f"u:{user_id}"


def user_rooms(user_ids: Iterable[str]) -> list[str]:
    return [user_room(u) for u in user_ids]
