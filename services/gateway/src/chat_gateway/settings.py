"""Settings of the gateway."""

from __future__ import annotations

from chat_platform.ratelimit import Rate
from chat_platform.settings import PlatformSettings, RateSetting


class GatewaySettings(PlatformSettings):
    # What the web client uses for REST; empty means "same origin" (behind the load balancer).
    public_auth_url: str = ""
    public_message_url: str = ""
    # Browser origins allowed to open Socket.IO connections; empty allows same-origin only.
    socket_cors_origins: str = ""
    max_event_bytes: int = 64 * 1024
    command_timeout_seconds: float = 10.0
    # Presence: each connection's entry lives this long unless its gateway renews it.
    presence_ttl_seconds: int = 45
    presence_renew_seconds: int = 15
    # A connection whose access token expired without `auth:refresh` is closed after this.
    token_grace_seconds: int = 30
    typing_timeout_seconds: float = 6.0
    # Draining on SIGTERM: disconnect clients in batches over at most this long.
    drain_seconds: float = 10.0
    heartbeat_seconds: float = 2.0
    heartbeat_stale_seconds: float = 10.0
    # Above this many ephemeral emits in flight, typing signals are dropped first.
    ephemeral_inflight_max: int = 500
    # Sends waiting on one instance (queued behind a device's earlier sends, or forwarded
    # to the message service and not yet answered), in all and per socket. Beyond either a
    # send is answered `unavailable` (with retry_after) at once instead of queueing.
    max_sends_in_flight: int = 128
    max_sends_per_socket: int = 64
    # A send the message service has not answered by then is answered `timeout`.
    send_timeout_seconds: float = 5.0

    # Budgets of events only the socket has (the shared ones are the platform's): presence
    # queries, which the web client sends in chunks of 100 users on connecting and when it
    # meets someone, and token refreshes, one per device every few minutes.
    rate_presence_query: RateSetting = Rate(2.0, 20)
    rate_auth_refresh: RateSetting = Rate(0.5, 5)

    def budget_rates(self) -> dict[str, Rate]:
        return {
            **super().budget_rates(),
            "presence:query": self.rate_presence_query,
            "auth:refresh": self.rate_auth_refresh,
        }

    @property
    def socket_cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.socket_cors_origins.split(",") if o.strip()]
