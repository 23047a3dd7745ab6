"""The web client's content security policy: where the page may connect, and nothing more."""

from __future__ import annotations

import pytest

from chat_gateway.settings import GatewaySettings
from chat_gateway.web_client import connect_sources, content_security_policy, origin_of


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://API.example.com/v1/", "https://api.example.com"),
        ("http://10.0.0.5:8002", "http://10.0.0.5:8002"),
        ("http://[::1]:8001/auth", "http://[::1]:8001"),
        ("", None),  # same origin: `'self'` covers it
        ("/auth", None),
        ("ftp://files.example.com", None),
        ("javascript:alert(1)", None),
        ("https://a.example.com; script-src *", None),
        ("https://user:pw@a.example.com", None),
    ],
)
def test_configured_urls_become_origins_or_nothing(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_connect_sources_name_no_scheme_wildcard() -> None:
    settings = GatewaySettings(
        public_auth_url="https://auth.example.com/", public_message_url="https://auth.example.com"
    )
    assert connect_sources(settings, "chat.example.com") == [
        "'self'",
        "ws://chat.example.com",
        "wss://chat.example.com",
        "https://auth.example.com",
    ]
    assert connect_sources(GatewaySettings(), None) == ["'self'"]
    policy = content_security_policy(GatewaySettings(), "chat.example.com:8443")
    assert "connect-src 'self' ws://chat.example.com:8443 wss://chat.example.com:8443;" in policy
