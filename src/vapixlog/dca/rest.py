"""The REST mapping of DCA APIs (dca-framework.md section 3) as one ASGI app.

The request path is read top to bottom in `DcaApp.handle`: find the API and the model node,
check the method, check the role, read and validate the body, call the bound handler, answer
with the envelope. Every failure is a `DcaError`; nothing a client sends can cause a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from vapixlog.auth.users import User
from vapixlog.body import read_body
from vapixlog.dca import envelope
from vapixlog.dca.binding import BoundApi, RequestContext, Result
from vapixlog.dca.errors import (
    AuthenticationError,
    ConflictError,
    DcaError,
    InternalError,
    MalformedRequestError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from vapixlog.dca.model import Action, Property
from vapixlog.dca.resources import (
    ensure_items_exist,
    entity_changes,
    new_item,
    read_collection,
    read_entity,
    require,
    resolve,
)

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY = 64 * 1024
_ABSENT: Any = object()


class DcaApp:
    """Serves every bound API under `/config/rest/<api>/<version>/...`."""

    def __init__(self, apis: Iterable[BoundApi], *, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.max_body = max_body
        self.apis: dict[tuple[str, str], BoundApi] = {}
        for api in apis:
            for segment in api.version_segments:
                self.apis[(api.model.id, segment)] = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handle(request)
        except DcaError as exc:
            response = envelope.error(exc)
        except ClientDisconnect:
            return
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            response = envelope.error(InternalError("unexpected failure, see the service log"))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        user = request.scope.get("vapixlog.user")
        if not isinstance(user, User):
            raise AuthenticationError()
        path = request.url.path
        target = resolve(self.apis, request.scope.get("raw_path", b"").decode("latin-1") or path)
        client = request.client.host if request.client else "unknown"
        ctx = RequestContext(user, client, target.keys)
        await ensure_items_exist(target, ctx, path)
        strict = _strict(request)
        handlers, node, method = target.api.handlers, target.node, request.method
        if isinstance(node, Property):
            if method == "GET" and node.get:
                require(user, node.get, f"reading {node.path}")
                return envelope.success(await handlers.getters[node.path](ctx))
            if method in ("PATCH", "PUT") and node.set:
                require(user, node.set, f"setting {node.path}")
                value = node.validate(await self._read_data(request, strict), "data", strict)
                return _reply(await handlers.setters[node.path](ctx, value))
            raise _not_allowed(request, _allowed(get=node.get, set=node.set))
        if isinstance(node, Action):
            if method in ("POST", "PUT") and node.trigger:
                require(user, node.trigger, f"triggering {node.path}")
                data = await self._read_data(request, strict, optional=node.validate is None)
                data = _validate_action_input(node, data, strict)
                return _reply(await handlers.triggers[node.path](ctx, data))
            raise _not_allowed(request, _allowed(trigger=node.trigger))
        name = node.path or target.api.model.id
        if target.collection:
            if method == "GET" and node.get:
                require(user, node.get, f"reading {name}")
                return envelope.success(await read_collection(target.api, node, ctx))
            if method == "POST" and node.add:
                require(user, node.add, f"adding to {name}")
                item = new_item(node, await self._read_data(request, strict), strict)
                key = item[node.key_property or ""]
                if key in await handlers.key_listers[node.path](ctx):
                    raise ConflictError(f"{name} already has an item {key!r}")
                return _reply(await handlers.adders[node.path](ctx, item), status=201)
            raise _not_allowed(request, _allowed(get=node.get, add=node.add))
        if method == "GET" and node.get:
            require(user, node.get, f"reading {name}")
            return envelope.success(await read_entity(target.api, node, ctx))
        if method in ("PATCH", "PUT") and node.settable:
            changes = entity_changes(
                node, await self._read_data(request, strict), "data", user, strict
            )
            warnings: list[str] = []
            for prop, value in changes:
                result = await handlers.setters[prop.path](ctx, value)
                warnings += result.warnings if result else []
            return envelope.success(warnings=warnings)
        is_item = node.collection == "map"
        if method == "DELETE" and is_item and node.remove:
            require(user, node.remove, f"removing from {name}")
            return _reply(await handlers.removers[node.path](ctx))
        remove = node.remove if is_item else None
        raise _not_allowed(request, _allowed(get=node.get, set=node.settable, remove=remove))

    async def _read_data(self, request: Request, strict: bool, *, optional: bool = False) -> Any:
        """The `data` member of a JSON body of at most `max_body` bytes."""
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json(content_type):
            raise UnsupportedMediaTypeError(f"{content_type!r}, send application/json")
        raw = await read_body(request, self.max_body)
        if raw is None:
            raise PayloadTooLargeError(f"the limit is {self.max_body} bytes")
        if not raw.strip():
            if optional:
                return _ABSENT
            raise MalformedRequestError('empty body, send {"data": ...}')
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise MalformedRequestError('the body must be a JSON object {"data": ...}')
        if "data" not in body and not optional:
            raise MalformedRequestError("the body has no 'data' member")
        if strict and (extra := sorted(body.keys() - {"data"})):
            raise ValidationError(f"{extra[0]}: unknown field")
        return body.get("data", _ABSENT)


def _validate_action_input(action: Action, data: Any, strict: bool) -> Any:
    if action.validate is not None:
        return action.validate(data, "data", strict)
    # An action without input accepts no body, `{}`, or `{"data": {}}`.
    if data is _ABSENT:
        return {}
    if not isinstance(data, dict):
        raise ValidationError("data: must be an empty object")
    if data and strict:
        raise ValidationError(f"data.{next(iter(data))}: unknown field")
    return {}


def _allowed(
    *,
    get: object = None,
    set: object = None,
    trigger: object = None,
    add: object = None,
    remove: object = None,
) -> list[str]:
    """The methods of the operations that exist, in a fixed order, for the `Allow` header."""
    methods = []
    for operation, names in (
        (get, ["GET"]),
        (add, ["POST"]),
        (set, ["PATCH", "PUT"]),
        (trigger, ["POST", "PUT"]),
        (remove, ["DELETE"]),
    ):
        if operation:
            methods += names
    return methods


def _not_allowed(request: Request, allow: list[str]) -> MethodNotAllowedError:
    detail = f"{request.method} on {request.url.path}"
    return MethodNotAllowedError(detail, allow=allow)


def _strict(request: Request) -> bool:
    value = request.query_params.get("strict", "true").lower()
    if value not in ("true", "false"):
        raise ValidationError("strict: must be true or false")
    return value == "true"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _reply(result: Result | None, *, status: int = 200) -> Response:
    if result is None:
        return envelope.success(status=status)
    if result.has_data:
        return envelope.success(result.data, warnings=result.warnings, status=status)
    return envelope.success(warnings=result.warnings, status=status)
