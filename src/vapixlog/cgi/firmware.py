"""`POST /axis-cgi/firmwaremanagement.cgi`: the JSON-RPC style firmware API, reboot only.

Every answer, errors included, is HTTP 200 with a JSON body (dca-framework.md section 6):
`{"apiVersion", "context", "method", "data"}` or `{..., "error": {"code", "message"}}`.
Error codes: 400 unparsable or invalid request, 405 unknown method, 417 unsupported major
`apiVersion`, 423 a reboot already under way. Upgrades and the other firmware methods are out
of scope and answer 405.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role
from vapixlog.body import read_body
from vapixlog.cgi import require
from vapixlog.device import Device

API_VERSION = "1.0"
SUPPORTED_VERSIONS = [API_VERSION]
_VERSION = re.compile(r"(\d+)\.(\d+)")
_MAX_BODY = 16 << 10


class Power(Protocol):
    """What the CGI needs from whoever runs the device (`server.DeviceServer`)."""

    def request_reboot(self) -> bool: ...  # False when a reboot is already under way

    async def reboot(self) -> None: ...  # carry it out, after the reply is sent


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def endpoint(device: Device, power: Power | None) -> Callable[[Request], Awaitable[Response]]:
    async def firmwaremanagement(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        reply: dict[str, Any] = {"apiVersion": API_VERSION}
        try:
            call = await _parse(request, reply)
            if call["method"] == "getSupportedVersions":
                reply.pop("apiVersion")
                reply["data"] = {"apiVersions": SUPPORTED_VERSIONS}
                return _json(reply)
            if call["method"] != "reboot":
                raise RpcError(405, "Unknown method in request.")
            _check_version(call)
            if power is None or not power.request_reboot():
                raise RpcError(423, "A reboot is already under way.")
            client = request.client.host if request.client else "unknown"
            await device.prepare_reboot(actor=f"user {user.name} from {client}")
            reply["data"] = {}
            return _json(reply, background=BackgroundTask(power.reboot))
        except RpcError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message}
            return _json(reply)

    return firmwaremanagement


async def _parse(request: Request, reply: dict[str, Any]) -> dict[str, Any]:
    """The request object; echoes `context` and `method` into `reply` as soon as known."""
    raw = await read_body(request, _MAX_BODY)
    if raw is None:
        raise RpcError(400, f"Request body larger than {_MAX_BODY} bytes.")
    try:
        call = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RpcError(400, "Could not parse the request: it is not valid JSON.") from None
    if not isinstance(call, dict):
        raise RpcError(400, "The request must be a JSON object.")
    if isinstance(call.get("context"), str):
        reply["context"] = call["context"]
    method = call.get("method")
    if not isinstance(method, str):
        raise RpcError(400, "The request has no method.")
    reply["method"] = method
    if "context" in call and not isinstance(call["context"], str):
        raise RpcError(400, "context must be a string.")
    if "params" in call and not isinstance(call["params"], dict):
        raise RpcError(400, "params must be an object.")
    return call


def _check_version(call: dict[str, Any]) -> None:
    version = call.get("apiVersion")
    if version is None:
        raise RpcError(400, "The request has no apiVersion.")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise RpcError(400, "apiVersion must look like '1.0'.")
    if match[1] != API_VERSION.split(".")[0]:
        raise RpcError(
            417, f"API version {version} is not supported; use one of {SUPPORTED_VERSIONS}."
        )


def _json(reply: dict[str, Any], background: BackgroundTask | None = None) -> Response:
    return Response(orjson.dumps(reply), media_type="application/json", background=background)
