"""Browsers on other sites may not change the device's state (cross-site request forgery).

A web page anywhere can make the admin's browser send requests to the device, and the browser
adds the admin's cached login to them. Such a request is refused when it would change state
(any method but GET, HEAD and OPTIONS) and the browser says it comes from elsewhere:

- `Origin` is present and is not the device's own origin (the scheme of the connection and
  the `Host` the browser addressed), `null` included. Browsers send `Origin` on every
  cross-origin POST, PUT, PATCH and DELETE, whatever the form encoding or fetch mode;
- or, without `Origin`, a `Referer` from another origin;
- or `Sec-Fetch-Site` is `cross-site` or `same-site`. Browsers send `Sec-Fetch-*` only to
  potentially trustworthy origins (HTTPS, localhost), so it is a second signal, not the rule.

Some CGIs change state on GET (`restart.cgi`, as on devices): any web page can make a
browser send one (a link, an image, a no-cors fetch) with neither `Origin` nor `Referer`. So a
request to such a path that comes from a browser at all (`Mozilla/` in the User-Agent, as every
browser sends, `Sec-Fetch-*`, `Upgrade-Insecure-Requests`, or an `Accept` asking for HTML) is
refused unless the browser shows it is same-origin (`Sec-Fetch-Site: same-origin`, or an
`Origin` or `Referer` of the device itself).

Clients that send none of these headers (curl, httpx, requests, ax-devil-device-api, our own
client) are not affected. The refusal speaks the endpoint's dialect: the DCA envelope with
code 12 and HTTP 403 under `/config/`, HTTP 200 with an `error` object (code 403) on the JSON-RPC
CGIs, plain text 403 elsewhere.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from vapixlog.dca.errors import CrossSiteRefusedError
from vapixlog.edge.answers import send_answer
from vapixlog.edge.dialect import error_answer

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CROSS_SITE_SIGNS = frozenset({b"origin", b"referer", b"sec-fetch-site", b"host"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MESSAGE = "cross-site request refused: a page of another site may not change this device"


class CrossSiteGuard:
    """Refuses state-changing browser requests from other origins (see the module doc).

    `json_rpc_versions` maps the path of each JSON-RPC CGI to the API version it answers with;
    `unsafe_gets` are the paths whose GET changes state.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        json_rpc_versions: Mapping[str, str],
        unsafe_gets: Collection[str] = (),
    ) -> None:
        self.app = app
        self.json_rpc_versions = dict(json_rpc_versions)
        self.unsafe_gets = frozenset(unsafe_gets)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._forged(scope):
            await self._refuse(scope, send)
            return
        await self.app(scope, receive, send)

    def _forged(self, scope: Scope) -> bool:
        if scope["path"] in self.unsafe_gets:
            return _from_a_browser(scope) and not _same_origin_browser(scope)
        return scope["method"] not in SAFE_METHODS and cross_site_reason(scope) is not None

    async def _refuse(self, scope: Scope, send: Send) -> None:
        error = CrossSiteRefusedError(_MESSAGE)
        status, body, ctype = error_answer(
            scope["path"], 403, error.message, self.json_rpc_versions, dca_code=error.code
        )
        await send_answer(send, status, body, ctype)


def cross_site_reason(scope: Scope) -> str | None:
    """Why the browser request in `scope` comes from another origin, or None."""
    origin = referer = fetch_site = host = None
    for name, value in scope["headers"]:
        if name not in _CROSS_SITE_SIGNS:  # most headers: one set lookup
            continue
        if name == b"origin":
            origin = value.decode("latin-1")
        elif name == b"referer":
            referer = value.decode("latin-1")
        elif name == b"sec-fetch-site":
            fetch_site = value.decode("latin-1").strip().lower()
        elif name == b"host":
            host = value.decode("latin-1")
    if fetch_site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {fetch_site}"
    source = origin if origin is not None else referer
    if source is None:
        return None
    own = _origin(f"{scope.get('scheme', 'http')}://{host or ''}")
    if own is None or _origin(source) != own:
        return f"{'Origin' if origin is not None else 'Referer'}: {source}"
    return None


def _from_a_browser(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"user-agent" and value.startswith(b"Mozilla/"):
            return True
        if name.startswith(b"sec-fetch-") or name == b"upgrade-insecure-requests":
            return True
        if name == b"accept" and b"text/html" in value:
            return True
    return False


def _same_origin_browser(scope: Scope) -> bool:
    """The browser says the request comes from the device's own pages."""
    said = {name: value for name, value in scope["headers"] if name in _SAME_ORIGIN_SIGNS}
    if said.get(b"sec-fetch-site") == b"same-origin":
        return True
    return (b"origin" in said or b"referer" in said) and cross_site_reason(scope) is None


_SAME_ORIGIN_SIGNS = (b"sec-fetch-site", b"origin", b"referer")


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of `url`, or None when it names no origin (`null`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        scheme, host = parts.scheme.lower(), parts.hostname
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a bad port or IPv6 literal
        return None
    if not host or port is None:
        return None
    return scheme, host.lower(), port
