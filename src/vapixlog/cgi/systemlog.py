"""`GET /axis-cgi/systemlog.cgi`: the current boot's system log as text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.device import Device


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    async def systemlog(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        return PlainTextResponse(device.syslog.volatile.text())

    return systemlog
