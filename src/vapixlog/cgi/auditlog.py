"""`GET /axis-cgi/auditlog.cgi` (and `/axis-cgi/admin/auditlog.cgi`): the audit log of
AXIS OS 12.5 and later (`vapixlog.syslog.audit`), admin only. Absent on older profiles.

As the spec (audit-log.md §2) has it: `200 text/plain`, one entry a line, oldest first, `\\n`
after every line. `tail=N` keeps the N newest entries (absent, 0, negative or not a number:
the whole log, ours); `version=true` wins over everything and answers `1.0.0`; unknown
parameters are ignored. Any method but GET: `400`. A viewer or operator: `403` with the
device's wording (ours: the status code is not documented).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.device import Device

PATHS = ("/axis-cgi/auditlog.cgi", "/axis-cgi/admin/auditlog.cgi")
# Every method reaches the endpoint, which answers all but GET with 400 itself.
ROUTE_METHODS = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
CGI_VERSION = "1.0.0"
NOT_ADMIN = "Only an admin can access the audit logs."
_MAX_TAIL_DIGITS = 10


def _tail(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    if len(value) > _MAX_TAIL_DIGITS:  # more than the log could ever hold: all of it
        return None
    count = int(value)
    return count if count > 0 else None


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    async def auditlog(request: Request) -> Response:
        refused = require(request, Role.ADMIN)
        if isinstance(refused, Response):
            if refused.status_code == 403:  # the device's own words for who may not
                return PlainTextResponse(f"{NOT_ADMIN}\n", status_code=403)
            return refused
        if request.method != "GET":
            return PlainTextResponse("Error: invalid request method.\n", status_code=400)
        query = request.query_params
        if query.get("version") == "true":
            return PlainTextResponse(CGI_VERSION)
        store = device.audit_log
        if store is None:  # the route exists only where the store does
            return PlainTextResponse("Error: no audit log.\n", status_code=404)
        lines = await anyio.to_thread.run_sync(store.lines, _tail(query.get("tail")))
        return PlainTextResponse("".join(f"{line}\n" for line in lines))

    return auditlog
