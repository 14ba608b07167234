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
from vapixlog.auth.throttle import LoginPolicy
from vapixlog.cgi import firmware, restart, serverreport, systemlog, systemready
from vapixlog.dca import discovery
from vapixlog.dca.resources import PREFIX
from vapixlog.dca.rest import DEFAULT_MAX_BODY, DcaApp
from vapixlog.device import Device
from vapixlog.edge import harden
from vapixlog.web import logs as logs_page

# Paths any client may call without logging in, as on devices.
_ANONYMOUS = frozenset({systemready.PATH})


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
) -> ASGIApp:
    """The device's HTTP interface; `power` carries out reboots (none: reboot answers 423);
    `trusted_proxies` may set client addresses with `X-Forwarded-For` (`vapixlog.edge`)."""

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
        Route("/axis-cgi/systemlog.cgi", systemlog.endpoint(device), methods=["GET"]),
        Route(
            "/axis-cgi/serverreport.cgi",
            serverreport.endpoint(device),
            methods=serverreport.ROUTE_METHODS,
        ),
        Route(firmware.PATH, firmware.endpoint(device, power), methods=["POST"]),
        Route(restart.PATH, restart.endpoint(device, power), methods=["GET"]),
        Route(systemready.PATH, systemready.endpoint(device), methods=["POST"]),
    ]
    pages = Starlette(routes=routes, lifespan=lifespan)
    rest = DcaApp(apis, max_body=max_body, unavailable=device.unavailable_reason)
    authenticated = AuthMiddleware(
        PathPrefixDispatch(PREFIX, rest, pages),
        store=users,
        digest=DigestAuthority(users.realm),
        on_failure=device.audit_auth_failure,
        on_throttle=device.audit_warning,
        login_policy=LoginPolicy(),
        public_paths=_ANONYMOUS.__contains__,
    )
    return harden(
        authenticated,
        json_rpc_versions={
            firmware.PATH: firmware.API_VERSION,
            systemready.PATH: device.config.systemready_version,
        },
        unsafe_gets=[restart.PATH],
        trusted_proxies=trusted_proxies,
    )
