"""`POST /axis-cgi/apidiscovery.cgi`: which VAPIX APIs the device has, anonymous
(device-security.md section 6). Methods `getApiList` (`params.id` and `params.version`, with
the globs `*` and `?`; an id that matches nothing gives an empty list, not an error) and
`getSupportedVersions`. Replies carry the device's version `1.1`, as AXIS OS 12.11.

Only the APIs this device serves are listed, with the ids and versions AXIS OS 12.11.77
lists for them (the DCA `log` API is in `/config/discover`, not here, as on devices). Like
that device, it lists `systemready` at 1.4 while the CGI itself answers 1.5.

Errors are HTTP 200 with the documented codes: 2002 not a POST, 2003 another major version,
2004 unknown method, 4000 not JSON, 4002 a missing or invalid parameter.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.cgi import firmware, remotesyslog
from vapixlog.cgi.jsonrpc import RpcError, answer, new_reply, read_call, requested_major
from vapixlog.device import Device

PATH = "/axis-cgi/apidiscovery.cgi"
API_VERSION = "1.1"
DOC_LINK = "https://www.axis.com/partner_pages/vapix_library/#/"
_NOT_JSON, _NOT_POST, _BAD_VERSION, _BAD_METHOD, _BAD_PARAM = 4000, 2002, 2003, 2004, 4002


def api_list(device: Device) -> list[dict[str, str]]:
    """(id, version, name) of every API the device serves, as AXIS OS 12.11.77 names them."""
    ready = device.config.systemready_version
    apis = [
        ("api-discovery", API_VERSION, "API Discovery Service"),
        ("fwmgr", firmware.API_VERSION, "Firmware Management"),
        ("remote-syslog", remotesyslog.API_VERSION, "Remote Syslog API"),
        ("systemready", "1.4" if ready == "1.5" else ready, "Systemready"),
    ]
    return [
        {"id": id_, "version": version, "name": name, "docLink": DOC_LINK, "status": "official"}
        for id_, version, name in apis
    ]


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    listed = api_list(device)

    async def apidiscovery(request: Request) -> Response:
        reply = new_reply(API_VERSION)
        try:
            if request.method != "POST":
                raise RpcError(_NOT_POST, "Only POST is supported.")
            call = await read_call(request, reply, invalid=_NOT_JSON, json_only=False)
            if call["method"] == "getSupportedVersions":
                return answer(reply, data={"apiVersions": [API_VERSION]})
            if call["method"] != "getApiList":
                raise RpcError(_BAD_METHOD, f"Method not supported: {call['method']}")
            if requested_major(call, invalid=_BAD_PARAM) != 1:
                raise RpcError(_BAD_VERSION, f"API version not supported: {call['apiVersion']}")
            return answer(reply, data={"apiList": _matching(listed, call.get("params", {}))})
        except RpcError as exc:
            return answer(reply, error=exc)

    return apidiscovery


def _matching(listed: list[dict[str, str]], params: dict[str, Any]) -> list[dict[str, str]]:
    patterns = {}
    for name in ("id", "version"):
        value = params.get(name, "*")
        if not isinstance(value, str):
            raise RpcError(_BAD_PARAM, f"Invalid parameter: {name}")
        patterns[name] = value
    return [
        api
        for api in listed
        if all(fnmatch.fnmatchcase(api[name], pattern) for name, pattern in patterns.items())
    ]
