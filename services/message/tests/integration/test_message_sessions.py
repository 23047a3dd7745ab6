"""Transactions left open by a dead process are aborted by a live one (real MongoDB server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from chat_platform.sessions import TransactionSessions

Db = AsyncDatabase[dict[str, Any]]


async def bump(client: AsyncMongoClient[dict[str, Any]], db: Db) -> None:
    """One transactional write to the shared document, without retries."""
    async with client.start_session() as session:
        await session.start_transaction()
        await db.counters.update_one({"_id": 1}, {"$inc": {"n": 1}}, session=session)
        await session.commit_transaction()


async def test_a_live_process_aborts_the_transaction_a_dead_one_left_open(
    mongodb_url: str, mongo_db: Db
) -> None:
    await mongo_db.counters.insert_one({"_id": 1, "n": 0})
    dead_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    live_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        dead_db, live_db = dead_client[mongo_db.name], live_client[mongo_db.name]
        dead = TransactionSessions(dead_client, dead_db.sessions, heartbeat=0.1, dead_after=0.5)
        live = TransactionSessions(live_client, live_db.sessions, heartbeat=0.1, dead_after=0.5)

        # The "dead" process writes in a transaction and never ends it (as if SIGKILLed).
        async with dead.start() as abandoned:
            await abandoned.start_transaction()
            await dead_db.counters.update_one({"_id": 1}, {"$inc": {"n": 100}}, session=abandoned)
            with pytest.raises(OperationFailure) as conflict:
                await bump(live_client, live_db)
            assert conflict.value.has_error_label("TransientTransactionError")

            # It beat while alive, so the live process first sees it alive; sweeping as often
            # as it beats, it finds it dead once its counter has stood still for `dead_after`.
            started = asyncio.get_running_loop().time()
            sweeps: list[int] = []
            while not any(sweeps) and len(sweeps) < 30:
                await live.beat()
                sweeps.append(await live.sweep())
                await asyncio.sleep(0.1)
            assert sweeps[-1] == 1
            assert 0.5 <= asyncio.get_running_loop().time() - started < 2

            await bump(live_client, live_db)
            assert (await live_db.counters.find_one({"_id": 1}) or {}).get("n") == 1
            assert await live_db.sessions.count_documents({"_id": dead.owner}) == 0
            # The aborted transaction cannot commit any more.
            with pytest.raises(OperationFailure):
                await abandoned.commit_transaction()
        assert (await live_db.counters.find_one({"_id": 1}) or {}).get("n") == 1
    finally:
        await dead_client.close()
        await live_client.close()


async def test_a_beating_process_is_never_swept(mongodb_url: str, mongo_db: Db) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        db = client[mongo_db.name]
        alive = TransactionSessions(client, db.sessions, heartbeat=0.05, dead_after=0.3)
        watcher = TransactionSessions(client, db.sessions, heartbeat=0.05, dead_after=0.3)
        async with alive.start():
            pass
        for _ in range(15):
            await alive.beat()
            assert await watcher.sweep() == 0
            await asyncio.sleep(0.05)
        assert await db.sessions.count_documents({"_id": alive.owner}) == 1
    finally:
        await client.close()


async def test_a_watcher_that_stopped_watching_judges_nobody_on_old_observations(
    mongodb_url: str, mongo_db: Db
) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        db = client[mongo_db.name]
        other = TransactionSessions(client, db.sessions, heartbeat=0.05, dead_after=0.3)
        watcher = TransactionSessions(client, db.sessions, heartbeat=0.05, dead_after=0.3)
        await other.beat()
        assert await watcher.sweep() == 0
        # The watcher itself stalls (event loop blocked, database unreachable) for a while,
        # while `other` goes on living but happens not to beat between the two sweeps.
        await asyncio.sleep(0.5)
        assert await watcher.sweep() == 0
        await other.close()
        assert await db.sessions.count_documents({}) == 0
    finally:
        await client.close()
