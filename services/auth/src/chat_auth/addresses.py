"""The client's address behind trusted proxies (for per-address budgets and login throttling).

`X-Forwarded-For` is only as true as whoever appended to it. Each proxy
appends the address it received the request from, so reading from the right,
every hop a trusted proxy added is believed and the first address that is not
a trusted proxy is the client: anything left of it the client may have made up.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ADDRESS_CHARS = 64
# A header of more hops than this is not from a chain of proxies of ours.
MAX_HOPS = 32


def parse_networks(spec: str) -> list[Network]:
    """`"10.0.0.0/8, 192.0.2.7"` as networks; a bad entry fails the start (ValueError)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    ]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """The right-most address of the chain (peer last) that is not a trusted proxy.

    When every hop is trusted the left-most is the best there is.
    """
    address = peer or "unknown"
    if not trusted or not _trusted(address, trusted):
        return address[:MAX_ADDRESS_CHARS]
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    hops = [hop for hop in hops if hop][-MAX_HOPS:]
    for hop in reversed(hops):
        address = hop
        if not _trusted(hop, trusted):
            break
    return address[:MAX_ADDRESS_CHARS]
