"""Which address the per-address budgets count: the peer, or the right-most untrusted hop."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chat_auth.addresses import client_address, parse_networks
from chat_auth.settings import AuthSettings

PROXIES = parse_networks("10.0.0.0/8, 192.0.2.10, fd00::/8")


def test_forwarded_header_is_ignored_without_trusted_proxies() -> None:
    assert client_address("192.0.2.10", ["203.0.113.7"], []) == "192.0.2.10"


def test_forwarded_header_is_ignored_from_a_peer_that_is_not_a_proxy() -> None:
    assert client_address("198.51.100.5", ["203.0.113.7"], PROXIES) == "198.51.100.5"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (["203.0.113.7"], "203.0.113.7"),
        # A client can write anything to the left of what our proxies appended.
        (["1.2.3.4, 203.0.113.7"], "203.0.113.7"),
        (["1.2.3.4, 203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        (["1.2.3.4", "203.0.113.7 , 10.1.2.3"], "203.0.113.7"),
        (["garbage, 10.1.2.3"], "garbage"),
        (["2001:db8::1, fd00::2"], "2001:db8::1"),
        # Every hop trusted: the left-most is the best there is.
        (["10.9.9.9, 10.1.2.3"], "10.9.9.9"),
        ([], "192.0.2.10"),
        (["x" * 500], "x" * 64),
    ],
)
def test_right_most_untrusted_hop_is_the_client(headers: list[str], expected: str) -> None:
    assert client_address("192.0.2.10", headers, PROXIES) == expected


def test_ipv4_mapped_peer_matches_an_ipv4_proxy() -> None:
    assert client_address("::ffff:10.0.0.1", ["203.0.113.7"], PROXIES) == "203.0.113.7"


def test_settings_parse_proxies_and_keep_the_deprecated_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")
    assert [str(n) for n in AuthSettings().trusted_networks] == ["10.0.0.0/8", "127.0.0.1/32"]
    monkeypatch.setenv("TRUST_FORWARDED_FOR", "true")
    assert [str(n) for n in AuthSettings().trusted_networks] == ["0.0.0.0/0", "::/0"]
    monkeypatch.setenv("TRUSTED_PROXIES", "not-an-address")
    with pytest.raises(ValidationError):
        AuthSettings()
