"""Settings of the auth service."""

from __future__ import annotations

from pathlib import Path

from chat_platform.settings import PlatformSettings


class AuthSettings(PlatformSettings):
    jwt_private_key_file: Path = Path(".dev/jwt-private.pem")
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_days: int = 30
    login_failures_per_username: int = 5
    login_failures_per_address: int = 50
    login_failure_window_seconds: int = 15 * 60
    # Behind a load balancer the client address comes from X-Forwarded-For;
    # only trust it when the proxy in front is ours.
    trust_forwarded_for: bool = False
