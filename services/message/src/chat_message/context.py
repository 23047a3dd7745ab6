"""Everything the message service's use cases need, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gridfs import AsyncGridFSBucket
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from chat_message.settings import MessageSettings
from chat_platform.jwt import TokenVerifier
from chat_platform.mongo import Document
from chat_platform.outbox import Outbox
from chat_platform.rabbit import Broker

if TYPE_CHECKING:
    from chat_message.cursors.batcher import CursorBatcher
    from chat_message.messages.batcher import SendBatcher
    from chat_message.sessions import TransactionSessions

PRODUCER = "message"


@dataclass
class MessageContext:
    settings: MessageSettings
    mongo: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    broker: Broker
    outbox: Outbox
    verifier: TokenVerifier
    files: AsyncGridFSBucket
    batcher: SendBatcher = field(init=False)
    cursors: CursorBatcher = field(init=False)
    transaction_sessions: TransactionSessions = field(init=False)

    @property
    def conversations(self) -> AsyncCollection[Document]:
        return self.db["conversations"]

    @property
    def direct_pairs(self) -> AsyncCollection[Document]:
        """One document per pair of users with a direct conversation, keyed by the pair."""
        return self.db["direct_pairs"]

    @property
    def members(self) -> AsyncCollection[Document]:
        return self.db["members"]

    @property
    def messages(self) -> AsyncCollection[Document]:
        return self.db["messages"]

    @property
    def attachments(self) -> AsyncCollection[Document]:
        return self.db["attachments"]

    @property
    def users(self) -> AsyncCollection[Document]:
        return self.db["users"]
