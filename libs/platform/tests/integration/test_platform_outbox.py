"""The transactional outbox on real MongoDB and RabbitMQ: staged events are always published."""

from __future__ import annotations

from typing import Any

import pytest
from aio_pika.abc import AbstractQueue
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from chat_contracts import Envelope, PresenceChanged
from chat_platform.amqp import Broker
from chat_platform.outbox import Outbox, Staged
from chat_testkit.amqp import Rabbit
from chat_testkit.waiting import eventually

Document = dict[str, Any]


def presence(user_id: str) -> Envelope:
    return Envelope.wrap(PresenceChanged(user_id=user_id, online=True, last_seen=None), "tests")


@pytest.fixture
def outbox(mongo_db: AsyncDatabase[Document], broker: Broker) -> Outbox:
    return Outbox(mongo_db["outbox"], broker)


async def write_and_stage(
    client: AsyncMongoClient[Document],
    db: AsyncDatabase[Document],
    outbox: Outbox,
    envelopes: list[Envelope],
) -> Staged:
    """A business write and its events in one transaction, as the services do it."""

    async def write(session: AsyncClientSession) -> Staged:
        await db["things"].insert_one({"_id": envelopes[0].id}, session=session)
        return await outbox.stage(envelopes, session)

    async with client.start_session() as session:
        return await session.with_transaction(write)


async def received_ids(rabbit: Rabbit, queue: AbstractQueue, count: int) -> list[str]:
    return [(await rabbit.get_from(queue)).message_id or "" for _ in range(count)]


async def test_staged_events_are_published_after_commit(
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    outbox: Outbox,
    rabbit: Rabbit,
) -> None:
    watcher = await rabbit.watch()
    envelopes = [presence("u1"), presence("u2")]
    staged = await write_and_stage(mongo_client, mongo_db, outbox, envelopes)
    # One document for the transaction's events, however many there are.
    stored = await mongo_db["outbox"].find().to_list()
    assert [d["_id"] for d in stored] == [staged.id]
    assert [e["id"] for e in stored[0]["envelopes"]] == [e.id for e in envelopes]

    assert await outbox.publish_after_commit(staged) == 2
    assert await received_ids(rabbit, watcher, 2) == [e.id for e in envelopes]
    # Deleting published events is deferred and batched; flush() does it now.
    await outbox.flush()
    assert await mongo_db["outbox"].count_documents({}) == 0
    assert await mongo_db["things"].count_documents({}) == 1


async def test_rolled_back_transaction_stages_nothing(
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    outbox: Outbox,
) -> None:
    class Refused(Exception):
        pass

    async def write(session: AsyncClientSession) -> None:
        await mongo_db["things"].insert_one({"_id": "t1"}, session=session)
        await outbox.stage([presence("u1")], session)
        raise Refused

    with pytest.raises(Refused):
        async with mongo_client.start_session() as session:
            await session.with_transaction(write)
    assert await mongo_db["outbox"].count_documents({}) == 0
    assert await mongo_db["things"].count_documents({}) == 0


async def test_relay_publishes_events_a_crash_left_staged(
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    outbox: Outbox,
    rabbit: Rabbit,
) -> None:
    watcher = await rabbit.watch()
    # The process "dies" between the commit and the publish.
    envelopes = [presence(f"u{i}") for i in range(3)]
    await write_and_stage(mongo_client, mongo_db, outbox, envelopes)

    assert await outbox.relay_once(older_than=0) == 3
    assert sorted(await received_ids(rabbit, watcher, 3)) == sorted(e.id for e in envelopes)
    # Published but not yet deleted: the relay must not publish them again meanwhile.
    assert await outbox.relay_once(older_than=0) == 0
    await outbox.flush()
    assert await mongo_db["outbox"].count_documents({}) == 0
    assert await outbox.relay_once(older_than=0) == 0


async def test_relay_leaves_fresh_events_to_their_own_publisher(
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    outbox: Outbox,
) -> None:
    await write_and_stage(mongo_client, mongo_db, outbox, [presence("u1")])
    assert await outbox.relay_once(older_than=60) == 0
    assert await mongo_db["outbox"].count_documents({}) == 1


async def test_events_wait_in_the_outbox_while_the_broker_is_down(
    amqp_url: str,
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    broker: Broker,
    rabbit: Rabbit,
) -> None:
    disconnected = Broker(amqp_url, rabbit.exchange, name="not-started")
    offline = Outbox(mongo_db["outbox"], disconnected)
    envelope = presence("u1")
    staged = await write_and_stage(mongo_client, mongo_db, offline, [envelope])
    assert await offline.publish_after_commit(staged) == 0
    assert await mongo_db["outbox"].count_documents({}) == 1

    # Another instance's relay (connected) picks it up.
    watcher = await rabbit.watch()
    assert await Outbox(mongo_db["outbox"], broker).relay_once(older_than=0) == 1
    assert (await rabbit.get_from(watcher)).message_id == envelope.id
    await disconnected.close()


async def test_published_events_leave_the_outbox_by_themselves(
    mongo_client: AsyncMongoClient[Document],
    mongo_db: AsyncDatabase[Document],
    outbox: Outbox,
) -> None:
    envelopes = [presence(f"u{i}") for i in range(4)]
    staged = await write_and_stage(mongo_client, mongo_db, outbox, envelopes)
    assert await outbox.publish_after_commit(staged) == 4

    async def drained() -> bool:
        return await mongo_db["outbox"].count_documents({}) == 0

    await eventually(drained, timeout=5, message="published events deleted from the outbox")
