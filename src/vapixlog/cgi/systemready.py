"""`POST /axis-cgi/systemready.cgi`: is the device ready, and which boot is it in?
(system-ready.md). Anonymous: no login is needed, credentials sent anyway do no harm.

Methods `systemready` and `getSupportedVersions`. The fields follow the device's API version
(its firmware profile's, or `--systemready-version`): 1.2 has `systemready` and `needsetup`
only; 1.4 adds `uptime` (whole seconds) and `bootid` (a UUID, new on every boot); 1.5 adds
`passphrasepolicy`. Every
value is a string. Replies carry the device's version whatever the request asked for, as
captured on devices. Errors are HTTP 200 with code 1000 (the only documented general code).

Readiness: the device is ready from the moment it serves requests until a reboot or shutdown
begins; while it goes down the answer is `"no"`. `params.timeout` (whole seconds, at most 60)
is how long a request may wait for readiness: a device that is going down does not become
ready again in this boot, so the answer comes at once either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vapixlog.cgi.jsonrpc import RpcError, answer, new_reply, read_call, requested_major
from vapixlog.device import Device

PATH = "/axis-cgi/systemready.cgi"
VERSIONS = ("1.2", "1.4", "1.5")
MAX_TIMEOUT = 60
PASSPHRASE_POLICY = "length"  # noqa: S105  # as AXIS OS 12.11 answered (15 characters or more)
_ERROR = 1000


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    version = device.config.systemready_version

    async def systemready(request: Request) -> Response:
        reply = new_reply(version)
        try:
            # Any Content-Type: this changes nothing, and clients differ in what they send.
            call = await read_call(request, reply, invalid=_ERROR, json_only=False)
            if call["method"] == "getSupportedVersions":
                return answer(reply, data={"apiVersions": [version]})
            if call["method"] != "systemready":
                raise RpcError(_ERROR, f"Unknown method: {call['method']}")
            if requested_major(call, invalid=_ERROR) != 1:
                raise RpcError(_ERROR, f"Unsupported API version: {call['apiVersion']}")
            _check_timeout(call.get("params", {}))
            return answer(reply, data=_state(device, version))
        except RpcError as exc:
            return answer(reply, error=exc)

    return systemready


def _check_timeout(params: dict[str, Any]) -> None:
    timeout = params.get("timeout", 0)
    valid = isinstance(timeout, int) and not isinstance(timeout, bool)
    if not valid or not 0 <= timeout <= MAX_TIMEOUT:
        raise RpcError(_ERROR, f"Invalid parameter: timeout (whole seconds, 0..{MAX_TIMEOUT})")


def _state(device: Device, version: str) -> dict[str, str]:
    ready = device.unavailable_reason() is None
    data = {"systemready": "yes" if ready else "no", "needsetup": "no"}
    level = VERSIONS.index(version)
    if level >= VERSIONS.index("1.4"):
        data["uptime"] = str(int(device.uptime()))
        data["bootid"] = device.boot_id
    if level >= VERSIONS.index("1.5"):
        data["passphrasepolicy"] = PASSPHRASE_POLICY
    return data
