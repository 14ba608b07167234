"""`POST /axis-cgi/firmwaremanagement.cgi`: the JSON-RPC firmware API: `status`, `reboot`,
`getSupportedVersions` (device-security.md section 4). Administrator for every method.

Error codes: 400 unparsable or invalid request (not JSON, no method, bad `apiVersion`),
405 unknown method (`Unknown method in request.`, the device's wording), 417 unsupported major
`apiVersion`, 423 a reboot already under way. Upgrades and the other firmware methods are out
of scope and answer 405. Replies carry the device's API version (`1.10`, as AXIS OS 12.11).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.cgi.jsonrpc import RpcError, answer, new_reply, read_call, requested_major
from vapixlog.device import Device
from vapixlog.syslog import audit as events

PATH = "/axis-cgi/firmwaremanagement.cgi"
API_VERSION = "1.10"
_INVALID = 400


class Power(Protocol):
    """What a reboot needs from whoever runs the device (`server.DeviceServer`)."""

    def request_reboot(self) -> bool: ...  # False when a reboot is already under way

    async def reboot(self) -> None: ...  # carry it out, after the reply is sent


async def reboot(
    device: Device, power: Power | None, request: Request, user_name: str
) -> BackgroundTask | None:
    """Claim and audit a reboot for `user_name`; the task carries it out after the reply.
    None: a reboot is already under way (or nobody can carry one out)."""
    if power is None or not power.request_reboot():
        return None
    client = request.client.host if request.client else "unknown"
    await device.prepare_reboot(actor=events.actor(user_name, client))
    return BackgroundTask(power.reboot)


def endpoint(device: Device, power: Power | None) -> Callable[[Request], Awaitable[Response]]:
    async def firmwaremanagement(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        reply = new_reply(API_VERSION)
        try:
            call = await read_call(request, reply, invalid=_INVALID)
            method = call["method"]
            if method == "getSupportedVersions":
                return answer(reply, data={"apiVersions": [API_VERSION]})
            if method not in ("status", "reboot"):
                raise RpcError(405, "Unknown method in request.")
            if requested_major(call, invalid=_INVALID) != int(API_VERSION.split(".")[0]):
                raise RpcError(
                    417, f"API version {call['apiVersion']} is not supported; use {API_VERSION}."
                )
            if method == "status":
                return answer(reply, data=_status(device))
            task = await reboot(device, power, request, user.name)
            if task is None:
                raise RpcError(423, "A reboot is already under way.")
            return answer(reply, data={}, background=task)
        except RpcError as exc:
            return answer(reply, error=exc)

    return firmwaremanagement


def _status(device: Device) -> dict[str, Any]:
    # Only the active image: the emulated device never has an inactive one to roll back to.
    return {
        "activeFirmwareVersion": device.firmware_version,
        "activeFirmwarePart": device.firmware_part,
        "resetSource": device.reset_source,
    }
