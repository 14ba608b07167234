"""The ASGI application of one device: routes, authentication, start-up and shutdown.

A request goes through the edge (`vapixlog.edge`: client address, security headers, refusal of
cross-site state changes), `AuthMiddleware` (who is asking), then `PathPrefixDispatch`: the DCA
REST API, the hot path of every `writeMessage`, goes straight to `DcaApp`, which answers
every error itself; everything else (CGIs, discovery, pages, and the lifespan that starts and
stops the device) goes to a Starlette app with its routes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vapixlog import web
from vapixlog.apis import log as log_api
from vapixlog.auth import AuthMiddleware, DigestAuthority, UserStore
from vapixlog.auth.bruteforce import BruteForceBlock
from vapixlog.auth.middleware import USER_SCOPE_KEY
from vapixlog.auth.policy import AuthPolicy, schemes
from vapixlog.auth.throttle import LoginPolicy
from vapixlog.cgi import (
    accesslog,
    apidiscovery,
    firmware,
    logquery,
    remotesyslog,
    restart,
    serverreport,
    systemlog,
    systemready,
)
from vapixlog.dca import discovery
from vapixlog.dca.resources import PREFIX
from vapixlog.dca.rest import DEFAULT_MAX_BODY, DcaApp
from vapixlog.device import Device
from vapixlog.edge import harden
from vapixlog.syslog.access import AccessLogMiddleware
from vapixlog.web import logs as logs_page

# Paths any client may call without logging in, as on devices.
_ANONYMOUS = frozenset({systemready.PATH, apidiscovery.PATH})


class PathPrefixDispatch:
    """HTTP requests whose path starts with `prefix` go to `app`, all else to `default`."""

    def __init__(self, prefix: str, app: ASGIApp, default: ASGIApp) -> None:
        self.prefix = prefix
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
        else:
            await self.default(scope, receive, send)


def create_app(
    device: Device,
    users: UserStore,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    power: firmware.Power | None = None,
    trusted_proxies: Sequence[str] = (),
    auth_policy: AuthPolicy = AuthPolicy.ANY,
    https: bool = False,
    brute_force_protection: bool = True,
) -> ASGIApp:
    """The device's HTTP interface; `power` carries out reboots (none: reboot answers 423);
    `trusted_proxies` may set client addresses with `X-Forwarded-For` (`vapixlog.edge`);
    `auth_policy` and `https` decide the schemes offered (`vapixlog.auth.policy`);
    `brute_force_protection` blocks guessing addresses as devices do
    (`vapixlog.auth.bruteforce`), else failed logins are throttled (`vapixlog.auth.throttle`)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await device.start()
        try:
            yield
        finally:
            await device.stop()

    apis = [log_api.bind(device)]
    markdown, openapi = discovery.browsable_documents(apis)
    routes = [
        *discovery.routes(apis, firmware=device.firmware),
        *web.routes(markdown=markdown, openapi=openapi),
        *logs_page.routes(device),
        # Every method reaches these two: they answer all but GET with 405 themselves.
        *(
            Route(path, systemlog.endpoint(device), methods=logquery.ROUTE_METHODS)
            for path in systemlog.PATHS
        ),
        *(
            Route(path, accesslog.endpoint(device), methods=logquery.ROUTE_METHODS)
            for path in accesslog.PATHS
        ),
        Route(
            "/axis-cgi/serverreport.cgi",
            serverreport.endpoint(device),
            methods=serverreport.ROUTE_METHODS,
        ),
        Route(firmware.PATH, firmware.endpoint(device, power), methods=["POST"]),
        Route(restart.PATH, restart.endpoint(device, power), methods=["GET"]),
        Route(systemready.PATH, systemready.endpoint(device), methods=["POST"]),
        # Other methods too: the CGI answers them with its own error (2002).
        Route(apidiscovery.PATH, apidiscovery.endpoint(device), methods=["GET", "POST", "PUT"]),
        Route(remotesyslog.PATH, remotesyslog.endpoint(device), methods=["POST"]),
    ]
    pages = Starlette(routes=routes, lifespan=lifespan)
    rest = DcaApp(apis, max_body=max_body, unavailable=device.unavailable_reason)
    offered = schemes(auth_policy, https=https)
    dispatch: ASGIApp = PathPrefixDispatch(PREFIX, rest, pages)
    if device.access_log.successes:  # off (as devices): not even a wrapper per request
        dispatch = AccessLogMiddleware(dispatch, device.access_log, user_key=USER_SCOPE_KEY)

    def failed_access(user: str | None, client: str, path: str) -> None:
        known = user is not None and users.get(user) is not None
        device.access_log.failure(user, known, client, path)

    authenticated = AuthMiddleware(
        dispatch,
        store=users,
        digest=DigestAuthority(users.realm, algorithms=offered.digest) if offered.digest else None,
        basic=offered.basic,
        on_failure=device.audit_auth_failure,
        on_throttle=device.audit_warning,
        login_policy=None if brute_force_protection else LoginPolicy(),
        block=BruteForceBlock() if brute_force_protection else None,
        on_block=device.audit_block,
        on_access_failure=failed_access,
        public_paths=_ANONYMOUS.__contains__,
    )
    return harden(
        authenticated,
        json_rpc_versions={
            firmware.PATH: firmware.API_VERSION,
            systemready.PATH: device.config.systemready_version,
            apidiscovery.PATH: apidiscovery.API_VERSION,
            remotesyslog.PATH: remotesyslog.API_VERSION,
        },
        unsafe_gets=[restart.PATH],
        trusted_proxies=trusted_proxies,
    )
