"""The DCA success and error envelopes, serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from vapixlog.dca.errors import DcaError

JSON = "application/json"
_SUCCESS = orjson.dumps({"status": "success"})
_NO_DATA: Any = object()


def success(
    data: Any = _NO_DATA, *, warnings: list[str] | None = None, status: int = 200
) -> Response:
    """`{"status":"success"}` with optional `data` and `warnings`."""
    if data is _NO_DATA and not warnings:
        return Response(_SUCCESS, status_code=status, media_type=JSON)
    body: dict[str, Any] = {"status": "success"}
    if data is not _NO_DATA:
        body["data"] = data
    if warnings:
        body["warnings"] = warnings
    return Response(orjson.dumps(body), status_code=status, media_type=JSON)


def error_body(code: int, message: str) -> bytes:
    return orjson.dumps({"status": "error", "error": {"code": code, "message": message}})


def error(exc: DcaError) -> Response:
    return Response(
        error_body(exc.code, exc.message),
        status_code=exc.status,
        media_type=JSON,
        headers=exc.headers,
    )
