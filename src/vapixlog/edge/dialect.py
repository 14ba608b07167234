"""An error answer in the dialect of the endpoint it comes from (the edge's refusals, faults).

- under `/config/`: the DCA envelope `{"status": "error", "error": {"code", "message"}}` with
  the HTTP status, and the DCA code that goes with it (`vapixlog.dca.errors`);
- the JSON-RPC CGIs: HTTP 200 with `{"apiVersion", "context"?, "method"?, "error"}`, the
  status as the error's code (the CGIs' own codes are HTTP-like: 400, 403, 405, 423);
- anything else: the status with a line of plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from vapixlog.dca import envelope, errors

_DCA_CODES = {cls.status: cls.code for cls in errors.DcaError.__subclasses__()}
_DCA_CODES[403] = errors.PermissionDeniedError.code  # not 12, the cross-site refusal's
JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"


def error_answer(
    path: str,
    status: int,
    message: str,
    json_rpc_versions: Mapping[str, str],
    *,
    dca_code: int | None = None,
    call: Mapping[str, Any] | None = None,
) -> tuple[int, bytes, bytes]:
    """(HTTP status, body, content type) of an error `message` for `path`; `call`: the
    JSON-RPC request, when read (its `context` and `method` are echoed, as the CGIs do)."""
    if path.startswith("/config/"):
        code = dca_code if dca_code is not None else _DCA_CODES.get(status, 100)
        return status, envelope.error_body(code, message), JSON
    if path in json_rpc_versions:
        reply: dict[str, Any] = {"apiVersion": json_rpc_versions[path]}
        for key in ("context", "method"):
            if call is not None and isinstance(call.get(key), str):
                reply[key] = call[key]
        reply["error"] = {"code": status, "message": f"{message}."}
        return 200, orjson.dumps(reply), JSON
    return status, f"{message}\n".encode(), TEXT
