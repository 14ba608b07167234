"""`GET /axis-cgi/systemlog.cgi` and `/axis-cgi/admin/systemlog.cgi`: the current boot's
system log as text, framed as the device frames it, filtered by `appname`, `text`,
`search_txt` and `tail` (`vapixlog.cgi.logquery` has the rules). Admin only. `text` exists
from AXIS OS 11.11.45: on older firmware profiles it is an unsupported parameter (400)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role
from vapixlog.cgi import logquery, require
from vapixlog.device import Device

PATHS = ("/axis-cgi/systemlog.cgi", "/axis-cgi/admin/systemlog.cgi")
PARAMETERS = ("appname", "text", "search_txt", "tail", "format")


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    parameters: tuple[str, ...] = PARAMETERS
    if not device.config.profile.systemlog_text_param:
        parameters = tuple(name for name in PARAMETERS if name != "text")

    async def systemlog(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        if (refused := logquery.only_get(request)) is not None:
            return refused
        query = logquery.parse(request, parameters)
        if isinstance(query, Response):
            return query
        lines = query.select(device.syslog.volatile.lines())
        if query.appname is None:
            return logquery.framed("System log", lines)
        return logquery.framed(f"Contents of SYSTEM_LOG for '{query.appname}'", lines)

    return systemlog
