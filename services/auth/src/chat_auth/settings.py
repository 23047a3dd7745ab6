"""Settings of the auth service."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator

from chat_auth import addresses
from chat_platform.ratelimit import Rate
from chat_platform.settings import PlatformSettings, RateSetting

# What TRUST_FORWARDED_FOR=true meant: every peer is a proxy of ours.
EVERY_ADDRESS = "0.0.0.0/0,::/0"


class AuthSettings(PlatformSettings):
    # Auth's own database (CONTRACT §7.5): the message service never sees password hashes.
    mongodb_db: str = "chat_auth"
    jwt_private_key_file: Path = Path(".dev/jwt-private.pem")
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_days: int = 30
    # Failed logins per account (whichever identifier names it) and per client address.
    login_failures_per_username: int = 5
    login_failures_per_address: int = 50
    login_failure_window_seconds: int = 15 * 60
    # Comma-separated addresses or CIDRs of the proxies in front of auth (nginx, the ingress):
    # X-Forwarded-For is read only from them, and only up to the first hop that is not one.
    trusted_proxies: str = ""
    # Deprecated: `true` trusts X-Forwarded-For from any peer (TRUSTED_PROXIES=0.0.0.0/0,::/0).
    trust_forwarded_for: bool = False
    # Password hashes at once (argon2id holds 64 MiB each); beyond, `unavailable` at once.
    # 0: as many as HASH_MEMORY_FRACTION of the memory limit (cgroup, else physical) holds.
    max_concurrent_hashes: int = Field(default=0, ge=0)
    hash_memory_fraction: float = Field(default=0.5, gt=0, le=1)
    # Per client address (events per second, burst): registrations and login attempts.
    rate_register: RateSetting = Rate(0.1, 10)
    rate_login: RateSetting = Rate(1.0, 30)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        addresses.parse_networks(value)
        return value

    @functools.cached_property
    def trusted_networks(self) -> list[addresses.Network]:
        spec = EVERY_ADDRESS if self.trust_forwarded_for else self.trusted_proxies
        return addresses.parse_networks(spec)

    def budget_rates(self) -> dict[str, Rate]:
        return {
            **super().budget_rates(),
            "register": self.rate_register,
            "login": self.rate_login,
        }
