"""Everything the auth service's handlers use, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection
from redis.asyncio import Redis

from chat_auth.hashing import PasswordHashing
from chat_auth.settings import AuthSettings
from chat_auth.throttle import LoginThrottle
from chat_auth.tokens.access import AccessTokenSigner
from chat_auth.tokens.refresh import RefreshTokens
from chat_platform.mongo import Document
from chat_platform.ratelimit import Budgets
from chat_platform.transactions import Transactions


@dataclass
class AuthContext:
    settings: AuthSettings
    users: AsyncCollection[Document]
    blocks: AsyncCollection[Document]
    redis: Redis
    transactions: Transactions
    hashing: PasswordHashing
    signer: AccessTokenSigner
    refresh_tokens: RefreshTokens
    throttle: LoginThrottle
    budgets: Budgets
    decoy_password_hash: str
