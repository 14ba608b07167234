"""The service's edge: what every request passes before authentication and routing.

Outermost first: `ClientAddress` (which address is asking: the socket's peer, or what a
trusted proxy says), the fault layer when faults are asked for (`vapixlog.faults`; else not
installed at all) and `CrossSiteGuard` (browser requests from other sites may not change
state). Each is plain ASGI middleware with one job; `harden` stacks them around the device's
app. Hardening headers on every response (`vapixlog.edge.headers`) are the edge's rule too,
applied where answers are made: by `SecurityHeaders` around the pages and CGIs, by
`send_answer` for the answers of these layers, by the DCA REST app for its JSON.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from starlette.types import ASGIApp

from vapixlog.edge.clientaddr import ClientAddress, TrustedProxies
from vapixlog.edge.crosssite import CrossSiteGuard
from vapixlog.edge.headers import STRICT_CSP, SecurityHeaders, content_security_policy

if TYPE_CHECKING:
    from vapixlog.faults import FaultPlan

__all__ = [
    "STRICT_CSP",
    "ClientAddress",
    "CrossSiteGuard",
    "SecurityHeaders",
    "TrustedProxies",
    "content_security_policy",
    "harden",
]


def harden(
    app: ASGIApp,
    *,
    json_rpc_versions: Mapping[str, str],
    unsafe_gets: Collection[str] = (),
    trusted_proxies: Iterable[str] = (),
    faults: FaultPlan | None = None,
    unfaulted: Collection[str] = (),
) -> ASGIApp:
    """`app` behind the edge layers (see the module doc); `faults`: the device's fault plan,
    which never touches the paths in `unfaulted`."""
    guarded: ASGIApp = CrossSiteGuard(
        app, json_rpc_versions=json_rpc_versions, unsafe_gets=unsafe_gets
    )
    if faults is not None:
        from vapixlog.faults.layer import FaultLayer

        guarded = FaultLayer(guarded, faults, json_rpc_versions=json_rpc_versions, exempt=unfaulted)
    proxies = TrustedProxies(trusted_proxies)
    return ClientAddress(guarded, proxies) if proxies else guarded
