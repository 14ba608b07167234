"""`GET /axis-cgi/restart.cgi`: the legacy reboot (device-security.md section 5).
Administrator; answers a small HTML page, then reboots through the same path as
firmwaremanagement.cgi's `reboot`. Superseded on devices, but some clients still call it.

A GET that reboots can be triggered by any web page the admin opens (a link, an image, a
no-cors fetch): `vapixlog.edge.crosssite` refuses requests to it that come from a browser
unless the browser says they are same-origin (docs/security.md, docs/fidelity.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.cgi.firmware import Power, reboot
from vapixlog.device import Device

PATH = "/axis-cgi/restart.cgi"
_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Restarting</title></head>
<body><p>Restarting the device. It will be back in a moment.</p></body>
</html>
"""


def endpoint(device: Device, power: Power | None) -> Callable[[Request], Awaitable[Response]]:
    async def restart(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        task = await reboot(device, power, request, user.name)
        if task is None:
            return PlainTextResponse("Error: a restart is already under way.\n", status_code=503)
        return HTMLResponse(_PAGE, background=task)

    return restart
