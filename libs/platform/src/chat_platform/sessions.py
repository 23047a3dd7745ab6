"""Sessions for transactions, and aborting the transactions a dead process left open.

A process killed mid-transaction leaves it open on the server until the server
reaps it (`transactionLifetimeLimitSeconds`, 60 s, in MongoDB and the embedded
server alike), and until then every write to a document it touched conflicts.
One conversation's seq counter is touched by every batch of sends, so a crash
would stall every send of the service for a minute. Instead each process
records the sessions it runs transactions on, next to a heartbeat counter, and
any live process kills the sessions of one whose counter stopped moving.

Liveness is judged by each observer's own monotonic clock (a counter that has
not moved for `dead_after` seconds), so clocks need not agree between hosts.
Killing the sessions of a process that was only stalled is harmless: its
transaction aborts with a transient error and `with_transaction` retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from chat_platform.mongo import Document

log = logging.getLogger(__name__)

MAX_RECORDED_SESSIONS = 512


class TransactionSessions:
    def __init__(
        self,
        mongo: AsyncMongoClient[Document],
        collection: AsyncCollection[Document],
        *,
        heartbeat: float = 1.0,
        dead_after: float = 5.0,
    ) -> None:
        self.mongo = mongo
        self.collection = collection
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self.owner = uuid.uuid4().hex
        self._lsids: dict[bytes, dict[str, Any]] = {}
        # Other owners' heartbeat counters: (value, when it was first seen with that value).
        self._observed: dict[str, tuple[int, float]] = {}
        self._last_sweep = -1e9

    @contextlib.asynccontextmanager
    async def start(self) -> AsyncIterator[AsyncClientSession]:
        """A session to run a transaction on, recorded before its first use."""
        async with self.mongo.start_session() as session:
            lsid = session.session_id
            raw = bytes(lsid["id"])
            if raw not in self._lsids:
                self._lsids[raw] = dict(lsid)
                # The driver replaces sessions now and then; only recent ones can be open.
                while len(self._lsids) > MAX_RECORDED_SESSIONS:
                    del self._lsids[next(iter(self._lsids))]
                await self.beat()
            yield session

    async def beat(self) -> None:
        # All known sessions every time: the record heals if another process swept it.
        await self.collection.update_one(
            {"_id": self.owner},
            {"$inc": {"beat": 1}, "$set": {"lsids": list(self._lsids.values())}},
            upsert=True,
        )

    async def sweep(self) -> int:
        """Kill the sessions of owners whose heartbeat stopped; how many owners were dead."""
        now = time.monotonic()
        if now - self._last_sweep > 3 * self.heartbeat:
            # We were not watching (start, outage, stall): judge nobody on stale observations.
            self._observed.clear()
        self._last_sweep = now
        others = await self.collection.find({"_id": {"$ne": self.owner}}).to_list()
        dead = []
        for doc in others:
            seen = self._observed.get(doc["_id"])
            if seen is None or seen[0] != doc.get("beat"):
                self._observed[doc["_id"]] = (doc.get("beat", 0), now)
            elif now - seen[1] > self.dead_after:
                dead.append(doc)
        present = {doc["_id"] for doc in others}
        self._observed = {k: v for k, v in self._observed.items() if k in present}
        for doc in dead:
            if doc.get("lsids"):
                await self.mongo.admin.command("killSessions", doc["lsids"])
            await self.collection.delete_one({"_id": doc["_id"], "beat": doc.get("beat")})
            log.warning(
                "aborted the open transactions of a dead process",
                extra={"owner": doc["_id"], "sessions": len(doc.get("lsids") or [])},
            )
        return len(dead)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.beat()
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("transaction session sweep failed", extra={"error": str(exc)})
            await asyncio.sleep(self.heartbeat)

    async def close(self) -> None:
        """After the last transaction: a clean exit leaves nothing for others to sweep."""
        await self.collection.delete_one({"_id": self.owner})
