"""The ASGI application of one device: routes, authentication, start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from vapixlog.apis import log as log_api
from vapixlog.auth import AuthMiddleware, DigestAuthority, UserStore
from vapixlog.cgi import firmware, systemlog
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

    dca = DcaApp([log_api.bind(device)], max_body=max_body)
    routes = [
        Route("/config/rest/{path:path}", dca),
        Route("/axis-cgi/systemlog.cgi", systemlog.endpoint(device), methods=["GET"]),
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
    )
    return Starlette(routes=routes, middleware=[auth], lifespan=lifespan)
