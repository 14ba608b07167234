"""The ASGI application of one device: routes, authentication, start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from vapixlog import web
from vapixlog.apis import log as log_api
from vapixlog.auth import AuthMiddleware, DigestAuthority, UserStore
from vapixlog.auth.throttle import LoginPolicy
from vapixlog.cgi import firmware, serverreport, systemlog
from vapixlog.dca import discovery
from vapixlog.dca.rest import DEFAULT_MAX_BODY, DcaApp
from vapixlog.device import Device


def create_app(
    device: Device,
    users: UserStore,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    power: firmware.Power | None = None,
) -> Starlette:
    """The device's HTTP interface; `power` carries out reboots (none: reboot answers 423)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await device.start()
        try:
            yield
        finally:
            await device.stop()

    apis = [log_api.bind(device)]
    routes = [
        Route("/config/rest/{path:path}", DcaApp(apis, max_body=max_body)),
        *discovery.routes(apis, firmware=device.firmware),
        *web.routes(),
        Route("/axis-cgi/systemlog.cgi", systemlog.endpoint(device), methods=["GET"]),
        Route(
            "/axis-cgi/serverreport.cgi",
            serverreport.endpoint(device),
            methods=serverreport.ROUTE_METHODS,
        ),
        Route(
            "/axis-cgi/firmwaremanagement.cgi",
            firmware.endpoint(device, power),
            methods=["POST"],
        ),
    ]
    auth = Middleware(
        AuthMiddleware,
        store=users,
        digest=DigestAuthority(users.realm),
        on_failure=device.audit_auth_failure,
        on_throttle=device.audit_warning,
        login_policy=LoginPolicy(),
    )
    return Starlette(routes=routes, middleware=[auth], lifespan=lifespan)
