"""Everything the auth service's handlers use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis

from chat_auth.settings import AuthSettings
from chat_auth.throttle import LoginThrottle
from chat_auth.tokens.access import AccessTokenSigner
from chat_auth.tokens.refresh import RefreshTokens
from chat_platform.jwt import TokenVerifier
from chat_platform.mongo import Document
from chat_platform.outbox import Outbox
from chat_platform.rabbit import Broker


@dataclass
class AuthContext:
    settings: AuthSettings
    mongo: AsyncMongoClient[Document]
    users: AsyncCollection[Document]
    redis: Redis
    broker: Broker
    outbox: Outbox
    hasher: PasswordHasher
    signer: AccessTokenSigner
    verifier: TokenVerifier
    refresh_tokens: RefreshTokens
    throttle: LoginThrottle
    decoy_password_hash: str
