"""`POST /axis-cgi/remotesyslog.cgi`: the Remote Syslog API (remote-syslog.md), at the
version of the device's firmware profile (1.2 as AXIS OS 12.11.77; the `AXIS` format from
AXIS OS 11.6 only, else 2104 for `syslogFormat`).

Methods `setup`, `enable`, `disable`, `status`, `test`, `getSupportedVersions`, every one
for administrators only (DECISIONS 13): the service's authentication answers a request
without credentials with its 401 challenge; another role gets HTTP 200 with code 2105, also
when its request is malformed. JSON only. Every answer is HTTP 200; `data` of every method
but getSupportedVersions is `{"enabled", "servers": [...]}` with all six server fields.

Errors, with the API's messages: 2100 an `apiVersion` that is missing, malformed or of
another major; 2101 a body that is not a JSON object with a `method` (also: a Content-Type
other than JSON, a non-string `context`, non-object `params`); 2102 an unknown method;
2103 `params.servers` or a server's `address` missing; 2104 an invalid value
(`details.address`, `details.propertyName`; every problem in `errors` when there are several);
2105 not an administrator; 2107 a body over 16 KiB; 2200 `enable` without servers; 2201 two
servers with the same address, port and protocol; 2202 `test` while disabled; 2203 more than
two servers; 1100 the settings could not be saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role, User
from vapixlog.cgi.jsonrpc import RpcError, answer, new_reply, read_call, requested_major
from vapixlog.device import Device
from vapixlog.forward.config import MAX_SERVERS, Problem, Server, has_identical, parse_server
from vapixlog.syslog import audit as events

PATH = "/axis-cgi/remotesyslog.cgi"
_METHODS = frozenset({"setup", "enable", "disable", "status", "test"})
_MISSING = "Required parameter missing"
_INVALID = "Invalid parameter value specified"


def _error(code: int) -> RpcError:
    return RpcError(code, _MESSAGES[code])


_MESSAGES = {
    1100: "Internal error",
    2100: "API version not supported",
    2101: "Invalid JSON",
    2102: "Method not supported",
    2105: "Authorization failed",
    2106: "Authentication failed",
    2107: "Request too large",
    2200: "No server configured",
    2201: "Identical servers not allowed",
    2202: "Remote syslog is disabled, send test message is not possible",
    2203: "Too many servers specified",
}


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    version = device.config.profile.remote_syslog.api_version

    async def remotesyslog(request: Request) -> Response:
        reply = new_reply(version)
        try:
            user, call = await _read(request, reply)
            return answer(reply, data=await _call(device, request, user, call))
        except RpcError as exc:
            return answer(reply, error=exc)

    return remotesyslog


async def _read(request: Request, reply: dict[str, Any]) -> tuple[User, dict[str, Any]]:
    """The administrator and their call. Anyone else learns nothing but 2105, whatever
    they sent; `context` and `method` are echoed when readable."""
    user = request.scope.get("vapixlog.user")
    if not isinstance(user, User):  # the authentication in front lets no one else through
        raise _error(2106)
    admin = user.role.grants([Role.ADMIN])
    try:
        # The codes read_call raises carry its specific message; the API's own is generic.
        call = await read_call(request, reply, invalid=2101, too_large=2107)
    except RpcError as exc:
        raise _error(exc.code if admin else 2105) from None
    if not admin:
        raise _error(2105)
    return user, call


async def _call(device: Device, request: Request, user: User, call: dict[str, Any]) -> Any:
    method = call["method"]
    if method == "getSupportedVersions":  # the one method without apiVersion
        return {"apiVersions": [device.config.profile.remote_syslog.api_version]}
    if method not in _METHODS:
        raise _error(2102)
    try:
        major = requested_major(call, invalid=2100)
    except RpcError:
        raise _error(2100) from None
    if major != int(device.config.profile.remote_syslog.api_version.split(".")[0]):
        raise _error(2100)
    remote = device.remote_syslog
    client = request.client.host if request.client else "unknown"
    actor = events.actor(user.name, client)
    try:
        if method == "setup":
            formats = device.config.profile.remote_syslog.formats
            settings = await remote.setup(_servers(call.get("params"), formats), actor=actor)
        elif method == "enable":
            if not remote.settings.servers:
                raise _error(2200)
            if has_identical(remote.settings.servers):
                raise _error(2201)
            settings = await remote.enable(actor=actor)
        elif method == "disable":
            settings = await remote.disable(actor=actor)
        else:
            settings = remote.settings
            if method == "test":
                if not settings.enabled:
                    raise _error(2202)
                remote.test()
    except OSError:  # the settings could not be saved; nothing changed
        raise _error(1100) from None
    return settings.to_json()


def _servers(params: Any, formats: tuple[str, ...]) -> tuple[Server, ...]:
    """The servers of a `setup` request, defaults applied; RpcError for the first problem,
    with every problem in `errors` when there are several. `formats`: the `syslogFormat`
    values this firmware has (no `AXIS` before 11.6)."""
    if not isinstance(params, dict) or "servers" not in params:
        raise RpcError(2103, _MISSING, details={"propertyName": "servers"})
    objects = params["servers"]
    if not isinstance(objects, list):
        raise RpcError(2104, _INVALID, details={"propertyName": "servers"})
    if len(objects) > MAX_SERVERS:
        raise _error(2203)
    servers: list[Server] = []
    problems: list[Problem] = []
    for obj in objects:
        parsed = parse_server(obj)
        if isinstance(parsed, Server) and str(parsed.syslog_format) not in formats:
            problems.append(Problem(False, "syslogFormat", parsed.address))
        elif isinstance(parsed, Server):
            servers.append(parsed)
        else:
            problems.extend(parsed)
    if problems:
        errors = [_problem(problem) for problem in problems]
        first = errors[0]
        raise RpcError(
            first["code"],
            first["message"],
            details=first["details"],
            errors=errors if len(errors) > 1 else None,
        )
    if has_identical(tuple(servers)):
        raise _error(2201)
    return tuple(servers)


def _problem(problem: Problem) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if problem.address is not None:
        details["address"] = problem.address
    details["propertyName"] = problem.property_name
    code = 2103 if problem.missing else 2104
    return {"code": code, "message": _MISSING if problem.missing else _INVALID, "details": details}
