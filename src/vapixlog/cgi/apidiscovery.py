"""`POST /axis-cgi/apidiscovery.cgi`: which VAPIX APIs the device has, anonymous except on
10.12 (device-security.md section 6). Methods `getApiList` (`params.id` and `params.version`,
with the globs `*` and `?`; an id that matches nothing gives an empty list, not an error) and
`getSupportedVersions`. Replies carry the device's own version: `1.1` as AXIS OS 12.11, `1.0`
(entries without `status`) on older firmware, per the firmware profile.

Only the APIs this device serves are listed, with the ids and versions of its firmware
profile (the DCA `log` API is in `/config/discover`, not here, as on devices); `audit-log`
from 12.5. Like AXIS OS 12.11.77, it lists `systemready` at 1.4 while the CGI answers 1.5.

Errors are HTTP 200 with the documented codes: 2002 not a POST, 2003 another major version,
2004 unknown method, 4000 not JSON, 4002 a missing or invalid parameter.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.cgi import firmware
from vapixlog.cgi.jsonrpc import RpcError, answer, new_reply, read_call, requested_major
from vapixlog.device import Device

PATH = "/axis-cgi/apidiscovery.cgi"
AUDIT_LOG_VERSION = "1.0"  # as AXIS OS 12.11.77 lists it
DOC_LINK = "https://www.axis.com/partner_pages/vapix_library/#/"
_NOT_JSON, _NOT_POST, _BAD_VERSION, _BAD_METHOD, _BAD_PARAM = 4000, 2002, 2003, 2004, 4002


def api_list(device: Device) -> list[dict[str, str]]:
    """Every API the device serves, as AXIS OS names them, at its profile's versions."""
    profile = device.config.profile
    override = device.config.systemready_override  # `serve --systemready-version`
    ready = profile.systemready_discovery_version
    if override is not None:
        ready = "1.4" if override == "1.5" else override
    apis = [
        ("api-discovery", profile.apidiscovery_version, "API Discovery Service"),
        ("fwmgr", firmware.API_VERSION, "Firmware Management"),
        ("remote-syslog", profile.remote_syslog.api_version, "Remote Syslog API"),
        ("systemready", ready, "Systemready"),
    ]
    if profile.audit_log:
        apis.append(("audit-log", AUDIT_LOG_VERSION, "Audit Log API"))
    listed = []
    for id_, version, name in apis:
        entry = {"id": id_, "version": version, "name": name, "docLink": DOC_LINK}
        if profile.apidiscovery_status:  # 1.1 added it; a 1.0 reply (9.80) had none
            entry["status"] = "official"
        listed.append(entry)
    return listed


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    listed = api_list(device)
    version = device.config.profile.apidiscovery_version

    async def apidiscovery(request: Request) -> Response:
        reply = new_reply(version)
        try:
            if request.method != "POST":
                raise RpcError(_NOT_POST, "Only POST is supported.")
            call = await read_call(request, reply, invalid=_NOT_JSON, json_only=False)
            if call["method"] == "getSupportedVersions":
                return answer(reply, data={"apiVersions": [version]})
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
