"""Transactional outbox: every stored change is eventually published.

A write stages its events in the `outbox` collection inside the same
transaction, as one document however many events it has: the database pays
per document, and a group commit of a hundred sends must not pay for a
hundred outbox rows and then a hundred deletes. After the commit,
`publish_after_commit` publishes the events and removes the document; if the
process dies first, or the broker is down, the relay finds it later.
Consumers drop duplicates by envelope id, so publishing twice is harmless,
while publishing never is not.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter, Gauge
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from chat_contracts import Envelope
from chat_platform.amqp.broker import Broker, BrokerUnavailable
from chat_platform.mongo import Document

log = logging.getLogger(__name__)

RELAYED = Counter("chat_outbox_relayed_total", "Events published by the outbox relay.")
PENDING = Gauge("chat_outbox_pending", "Events staged but not yet published (at the last sweep).")


@dataclass(frozen=True)
class Staged:
    """The events one transaction wrote to the outbox, stored as one document `id`."""

    id: str
    envelopes: tuple[Envelope, ...]

    @classmethod
    def nothing(cls) -> Staged:
        return cls("", ())


class Outbox:
    """Staged events of one service; `relay_forever` must run for as long as it is used.

    Published documents are deleted from the outbox in bulk, `delete_delay`
    seconds after the first of them went out, not one transaction at a time: at
    high rates that saves a database round trip per write. Until deleted they
    are skipped by the relay; if the process dies first they are published
    again (duplicates are harmless, consumers drop them by id).
    """

    def __init__(
        self, collection: AsyncCollection[Document], broker: Broker, *, delete_delay: float = 0.05
    ) -> None:
        self.collection = collection
        self.broker = broker
        self.delete_delay = delete_delay
        self._published: list[str] = []
        self._deleting: asyncio.Task[None] | None = None

    async def stage(self, envelopes: Sequence[Envelope], session: AsyncClientSession) -> Staged:
        """Write the events in the caller's transaction, as one document."""
        if not envelopes:
            return Staged.nothing()
        staged = Staged(uuid.uuid4().hex, tuple(envelopes))
        await self.collection.insert_one(
            {
                "_id": staged.id,
                "envelopes": [e.model_dump(mode="json") for e in envelopes],
                "created_at": min(e.occurred_at for e in envelopes),
            },
            session=session,
        )
        return staged

    async def publish_after_commit(self, staged: Staged) -> int:
        """Publish events whose transaction has committed; how many went out now.

        The publishes go out in order on one channel and their confirms are
        awaited together, so a batch costs about one broker round trip. The
        document leaves the outbox only once all of its events went out.
        """
        if not staged.envelopes:
            return 0
        outcomes = await asyncio.gather(
            *(self.broker.publish(e) for e in staged.envelopes), return_exceptions=True
        )
        failed = [o for o in outcomes if o is not None]
        if failed:
            if not all(isinstance(o, BrokerUnavailable) for o in failed):
                log.error("unexpected publish failure", exc_info=failed[0])
            log.warning(
                "publish deferred to the relay",
                extra={"events": len(failed), "error": str(failed[0])},
            )
        else:
            self._published.append(staged.id)
            if self._deleting is None or self._deleting.done():
                self._deleting = asyncio.create_task(self._delete_published_soon())
        return len(outcomes) - len(failed)

    async def _delete_published_soon(self) -> None:
        await asyncio.sleep(self.delete_delay)
        await self.flush()

    async def flush(self) -> None:
        """Delete the documents published so far from the outbox."""
        ids, self._published = self._published, []
        if not ids:
            return
        try:
            await self.collection.delete_many({"_id": {"$in": ids}})
        except Exception:
            log.warning("outbox cleanup failed; the relay will publish those again", exc_info=True)

    async def relay_once(self, older_than: float = 2.0, batch: int = 100) -> int:
        """Publish events staged more than `older_than` seconds ago; how many went out."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        query: Document = {"created_at": {"$lt": cutoff}}
        if self._published:
            query["_id"] = {"$nin": list(self._published)}
        docs = await self.collection.find(query, sort=[("created_at", 1)], limit=batch).to_list()
        PENDING.set(sum(len(d["envelopes"]) for d in docs))
        published = 0
        for doc in docs:
            envelopes = tuple(Envelope.model_validate(e) for e in doc["envelopes"])
            published += await self.publish_after_commit(Staged(doc["_id"], envelopes))
        RELAYED.inc(published)
        return published

    async def relay_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                while await self.relay_once() and self.broker.connected:
                    pass
            except asyncio.CancelledError:
                await self.flush()
                raise
            except Exception:
                log.exception("outbox relay sweep failed")
            await asyncio.sleep(interval)
