"""Which address is asking: the socket's peer, unless it is a proxy the operator trusts.

By default the client address of a request (in logs, audit entries, throttling and the
connection limits) is the socket's peer address and nothing a client says can change it:
uvicorn's own `X-Forwarded-For` handling, which trusts loopback by default, is turned off.
With `serve --trusted-proxy ADDR` (an address or a network, repeatable), a request whose peer
is such a proxy takes its client address from `X-Forwarded-For`: the nearest entry, from the
right, that is not itself a trusted proxy, provided it is a valid IP address (anything else,
say `<script>` or a host name, is ignored and the peer address stays). `X-Forwarded-Proto`
(`http` or `https`) from a trusted proxy sets the scheme the cross-site check compares with.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IPAddress | None:
    """`text` as an IP address (IPv4-mapped IPv6 as IPv4), or None. A scoped IPv6 address
    (`fe80::1%zone`) is not a client address: its zone is any text, and names an interface of
    the proxy's own host."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


@functools.lru_cache(maxsize=4096)
def address_group(host: str) -> str:
    """What failed logins are counted by: the address itself, but for IPv6 its /64, which one
    host may send from all of (every address in it would otherwise count afresh)."""
    address = parse_ip(host)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


class TrustedProxies:
    """A set of proxy addresses and networks; `ValueError` names a bad entry."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: list[IPNetwork] = []
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted proxy {entry!r} is not an IP address or network"
                ) from None

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: list[str]) -> str:
        """The client address of a request from `peer` with these `X-Forwarded-For` values."""
        if parse_ip(peer) not in self:
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                return peer  # not an address: nothing further left can be believed
            if address not in self:
                return str(address)
        return peer


class ClientAddress:
    """Sets `scope["client"]` (and the scheme) from a trusted proxy's headers."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client:
            forwarded: list[str] = []
            proto: str | None = None
            for name, value in scope["headers"]:
                if name == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip().lower()
            peer = str(client[0])
            if forwarded or proto:
                address = self.proxies.client(peer, forwarded)
                trusted = parse_ip(peer) in self.proxies
                if address != peer:
                    scope["client"] = (address, 0)
                if trusted and proto in ("http", "https") and scope["type"] == "http":
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
