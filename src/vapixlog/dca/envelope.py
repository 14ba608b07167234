"""The DCA success and error envelopes, serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from vapixlog.dca.errors import DcaError

JSON = "application/json"
SUCCESS = orjson.dumps({"status": "success"})
NO_DATA: Any = object()  # `data` left out (None would be `"data": null`)


def success_body(data: Any = NO_DATA, *, warnings: list[str] | None = None) -> bytes:
    """`{"status":"success"}` with optional `data` and `warnings`."""
    if data is NO_DATA and not warnings:
        return SUCCESS
    body: dict[str, Any] = {"status": "success"}
    if data is not NO_DATA:
        body["data"] = data
    if warnings:
        body["warnings"] = warnings
    return orjson.dumps(body)


def error_body(code: int, message: str) -> bytes:
    return orjson.dumps({"status": "error", "error": {"code": code, "message": message}})


def error(exc: DcaError) -> Response:
    return Response(
        error_body(exc.code, exc.message),
        status_code=exc.status,
        media_type=JSON,
        headers=exc.headers,
    )
