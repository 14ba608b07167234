"""`GET /axis-cgi/accesslog.cgi` and `/axis-cgi/admin/accesslog.cgi`: the HTTP access log
of the current boot (`vapixlog.syslog.access`), framed as `systemlog.cgi` frames its
output, filtered by `text`, `search_txt` and `tail` as there. Admin only.

The spec documents the path and role only (server-report.md §4); the header line, the
admin path and the parameters are ours, mirroring systemlog.cgi."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role
from vapixlog.cgi import logquery, require
from vapixlog.device import Device

PATHS = ("/axis-cgi/accesslog.cgi", "/axis-cgi/admin/accesslog.cgi")
PARAMETERS = ("text", "search_txt", "tail")


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    async def accesslog(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        if (refused := logquery.only_get(request)) is not None:
            return refused
        query = logquery.parse(request, PARAMETERS)
        if isinstance(query, Response):
            return query
        return logquery.framed("Access log", query.select(device.access_log.lines()))

    return accesslog
