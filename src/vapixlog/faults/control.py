"""`/vapixlog/control/faults`: the device's faults over HTTP, for tests and demos.

Exists only with `vapixlog serve --control` (else 404, as any unknown path), administrators
only (401/403 otherwise), never faulted itself, and, as every state-changing request,
refused to browsers of other sites by the edge (`vapixlog.edge.crosssite`). JSON both ways:

- `GET` lists the faults: `{"faults": ["report:takes=30", ...]}`;
- `PUT` replaces them with the body's `{"faults": [SPEC, ...]}` (counts start again);
- `POST` adds the body's faults to them;
- `DELETE` clears them.

A fault that cannot be read changes nothing: 400 with `{"error": "..."}`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from vapixlog.auth.users import Role
from vapixlog.body import read_body
from vapixlog.cgi import require
from vapixlog.faults.plan import FaultPlan
from vapixlog.faults.spec import FaultSpecError

PATH = "/vapixlog/control/faults"
METHODS = ["GET", "PUT", "POST", "DELETE"]
_MAX_BODY = 64 << 10


def _json(data: object, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def endpoint(plan: FaultPlan) -> Callable[[Request], Awaitable[Response]]:
    async def faults(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        if request.method in ("PUT", "POST"):
            raw = await read_body(request, _MAX_BODY)
            specs = _specs(raw)
            if isinstance(specs, str):
                return _json({"error": specs}, 400)
            try:
                (plan.set if request.method == "PUT" else plan.add)(specs)
            except FaultSpecError as exc:
                return _json({"error": str(exc)}, 400)
        elif request.method == "DELETE":
            plan.clear()
        return _json({"faults": [str(fault) for fault in plan.faults]})

    return faults


def _specs(raw: bytes | None) -> list[str] | str:
    """The fault specs of a body, or what is wrong with it."""
    if raw is None:
        return f"body larger than {_MAX_BODY} bytes"
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 'the body must be JSON: {"faults": ["SPEC", ...]}'
    specs = doc.get("faults") if isinstance(doc, dict) else doc
    if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
        return 'the body must be {"faults": ["SPEC", ...]}, a list of strings'
    return specs
