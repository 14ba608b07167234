"""The ASGI application of one device: routes, authentication, start-up and shutdown.

A request goes through the edge (`vapixlog.edge`: client address, faults when asked for,
refusal of cross-site state changes), `AuthMiddleware` (who is asking), then
`PathPrefixDispatch`: the DCA REST API, the hot path of every `writeMessage`, goes straight to
`DcaApp`, which answers every error itself (its JSON with the hardening headers); everything
else (CGIs, discovery, pages, and the lifespan that starts and stops the device) goes to a
Starlette app with its routes, behind `SecurityHeaders`.
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
    auditlog,
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
from vapixlog.edge import SecurityHeaders, harden
from vapixlog.faults import FaultPlan
from vapixlog.faults import control as fault_control
from vapixlog.syslog.access import AccessLogMiddleware
from vapixlog.web import logs as logs_page


def _anonymous_paths(device: Device) -> frozenset[str]:
    """Paths any client may call without logging in, as on devices: apidiscovery.cgi
    demands a login on some firmware (10.12)."""
    anonymous = {systemready.PATH}
    if device.config.profile.apidiscovery_anonymous:
        anonymous.add(apidiscovery.PATH)
    return frozenset(anonymous)


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
    realm: str | None = None,
    faults: FaultPlan | None = None,
    control: bool = False,
) -> ASGIApp:
    """The device's HTTP interface; `power` carries out reboots (none: reboot answers 423);
    `trusted_proxies` may set client addresses with `X-Forwarded-For` (`vapixlog.edge`);
    `auth_policy` and `https` decide the schemes offered (`vapixlog.auth.policy`);
    `brute_force_protection` blocks guessing addresses as devices do
    (`vapixlog.auth.bruteforce`), else failed logins are throttled (`vapixlog.auth.throttle`);
    `realm` is the device's Basic and Digest realm, one of `users.realms` (default: the
    store's own; `serve` passes `AXIS_<serial>` of each device); `faults`: the device's fault
    plan (`vapixlog.faults`; None: no fault layer at all), which `control` lets administrators
    change at `/vapixlog/control/faults` (`serve --control`)."""
    if control and faults is None:
        faults = FaultPlan()
    realm = realm or users.realm

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await device.start()
        accounts_changed()  # changes made while the device was down
        try:
            yield
        finally:
            await device.stop()

    profile = device.config.profile
    # AXIS OS 10.x has no DCA at all: no discovery, no /config/rest (404), no DCA web UI.
    apis = [log_api.bind(device)] if profile.dca else []
    markdown, openapi = discovery.browsable_documents(apis)
    routes = [
        *(discovery.routes(apis, firmware=device.firmware) if profile.dca else []),
        *(web.routes(markdown=markdown, openapi=openapi) if profile.dca else []),
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
        *(
            Route(path, auditlog.endpoint(device), methods=auditlog.ROUTE_METHODS)
            for path in (auditlog.PATHS if device.config.profile.audit_log else ())
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
    if control and faults is not None:
        routes.append(
            Route(fault_control.PATH, fault_control.endpoint(faults), methods=fault_control.METHODS)
        )
    pages = SecurityHeaders(Starlette(routes=routes, lifespan=lifespan))
    rest = DcaApp(apis, max_body=max_body, unavailable=device.unavailable_reason)
    offered = schemes(auth_policy, https=https)
    dispatch: ASGIApp = PathPrefixDispatch(PREFIX, rest, pages) if profile.dca else pages
    if device.access_log.successes:  # off (as devices): not even a wrapper per request
        dispatch = AccessLogMiddleware(dispatch, device.access_log, user_key=USER_SCOPE_KEY)

    def known(user: str | None) -> bool:
        return user is not None and users.get(user) is not None

    def failed_access(user: str | None, client: str, path: str) -> None:
        device.access_log.failure(user, known(user), client, path)

    def failed_login(user: str | None, client: str, reason: str) -> None:
        device.audit_login(user if known(user) else None, client, ok=False)

    def logged_in(user: str, client: str) -> None:
        device.audit_login(user, client, ok=True)

    def accounts_changed() -> None:
        device.audit_accounts(users.accounts(realm))

    authenticated = AuthMiddleware(
        dispatch,
        store=users,
        digest=DigestAuthority(realm, algorithms=offered.digest) if offered.digest else None,
        realm=realm,
        basic=offered.basic,
        on_failure=failed_login,
        on_success=logged_in,
        on_users_changed=accounts_changed,
        on_throttle=device.audit_warning,
        login_policy=None if brute_force_protection else LoginPolicy(),
        block=BruteForceBlock() if brute_force_protection else None,
        on_block=device.audit_block,
        on_access_failure=failed_access,
        public_paths=_anonymous_paths(device).__contains__,
    )
    return harden(
        authenticated,
        json_rpc_versions={
            firmware.PATH: firmware.API_VERSION,
            systemready.PATH: device.config.systemready_version,
            apidiscovery.PATH: profile.apidiscovery_version,
            remotesyslog.PATH: profile.remote_syslog.api_version,
        },
        unsafe_gets=[restart.PATH],
        trusted_proxies=trusted_proxies,
        faults=faults,
        unfaulted=[fault_control.PATH],
    )
