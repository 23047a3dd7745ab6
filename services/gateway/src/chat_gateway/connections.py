"""The sockets connected to this instance, and nothing about any other instance.

Delivery never looks here: it addresses user rooms through the Redis
manager. This only serves what an instance must do for its own sockets:
renew their presence, close them when their token expires, stop their typing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class Connection:
    sid: str
    user_id: str
    token_expires_at: float
    typing_timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def cancel_typing(self) -> list[str]:
        """Stop every typing timer; the conversations that were being typed in."""
        conversations = list(self.typing_timers)
        for timer in self.typing_timers.values():
            timer.cancel()
        self.typing_timers.clear()
        return conversations


class LocalConnections:
    def __init__(self) -> None:
        self._by_sid: dict[str, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._by_sid[connection.sid] = connection

    def pop(self, sid: str) -> Connection | None:
        return self._by_sid.pop(sid, None)

    def get(self, sid: str) -> Connection | None:
        return self._by_sid.get(sid)

    def __len__(self) -> int:
        return len(self._by_sid)

    def all(self) -> list[Connection]:
        return list(self._by_sid.values())
