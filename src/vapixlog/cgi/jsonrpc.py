"""What the JSON-RPC style CGIs share (firmwaremanagement.cgi, systemready.cgi, ...).

Every answer, errors included, is HTTP 200 with a JSON body (dca-framework.md section 6):
`{"apiVersion", "context"?, "method", "data"}` or `{..., "error": {"code", "message"}}`, in
that key order, with the device's own API version whatever the request asked for (captured
replies echo the device's version). Each CGI has its own error codes; `read_call` raises
`RpcError` with the CGI's code for a request it cannot read.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from vapixlog.body import is_json, read_body

MAX_BODY = 16 << 10
_VERSION = re.compile(r"(\d+)(?:\.(\d+))?")


class RpcError(Exception):
    """An error answered in the CGI's dialect: `{"error": {"code", "message"}}`, plus the
    `details` and `errors` members some CGIs add (remotesyslog.cgi)."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.errors = errors


def new_reply(api_version: str) -> dict[str, Any]:
    return {"apiVersion": api_version}


async def read_call(
    request: Request,
    reply: dict[str, Any],
    *,
    invalid: int,
    json_only: bool = True,
    too_large: int | None = None,
) -> dict[str, Any]:
    """The request object; echoes `context` and `method` into `reply` as soon as known.

    `invalid` is the CGI's error code for a request it cannot read, `too_large` for a body
    over `MAX_BODY` (default: `invalid`). `json_only`: refuse any Content-Type but JSON
    (what a browser sends cross-site without asking first is not JSON).
    """
    if json_only and not is_json(request.headers.get("content-type", "")):
        raise RpcError(invalid, "The request must be sent as Content-Type: application/json.")
    raw = await read_body(request, MAX_BODY)
    if raw is None:
        code = invalid if too_large is None else too_large
        raise RpcError(code, f"Request body larger than {MAX_BODY} bytes.")
    try:
        call = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RpcError(invalid, "Could not parse the request: it is not valid JSON.") from None
    if not isinstance(call, dict):
        raise RpcError(invalid, "The request must be a JSON object.")
    if isinstance(call.get("context"), str):
        reply["context"] = call["context"]
    method = call.get("method")
    if not isinstance(method, str):
        raise RpcError(invalid, "The request has no method.")
    reply["method"] = method
    if "context" in call and not isinstance(call["context"], str):
        raise RpcError(invalid, "context must be a string.")
    if "params" in call and not isinstance(call["params"], dict):
        raise RpcError(invalid, "params must be an object.")
    return call


def requested_major(call: dict[str, Any], *, invalid: int) -> int:
    """The major number of the call's `apiVersion` ("1", "1.4")."""
    version = call.get("apiVersion")
    if version is None:
        raise RpcError(invalid, "The request has no apiVersion.")
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise RpcError(invalid, "apiVersion must look like '1.0'.")
    return int(match[1])


def answer(
    reply: dict[str, Any],
    *,
    data: Any = None,
    error: RpcError | None = None,
    background: BackgroundTask | None = None,
) -> Response:
    """The reply with its `data` or its `error`, as HTTP 200 JSON."""
    if error is not None:
        reply["error"] = {"code": error.code, "message": error.message}
        if error.details is not None:
            reply["error"]["details"] = error.details
        if error.errors is not None:
            reply["error"]["errors"] = error.errors
    else:
        reply["data"] = data if data is not None else {}
    return Response(orjson.dumps(reply), media_type="application/json", background=background)
