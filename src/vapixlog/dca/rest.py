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
    DcaError,
    InternalError,
    MalformedRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from vapixlog.dca.model import Action, Entity, Operation, Property

log = logging.getLogger(__name__)
PREFIX = "/config/rest/"
DEFAULT_MAX_BODY = 64 * 1024
_ABSENT: Any = object()
Node = Entity | Property | Action


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
        api, node = self._resolve(request.url.path)
        ctx = RequestContext(user, request.client.host if request.client else "unknown")
        strict = _strict(request)
        method = request.method
        if isinstance(node, Property):
            if method == "GET" and node.get:
                _require(user, node.get, f"reading {node.path}")
                return envelope.success(await api.handlers.getters[node.path](ctx))
            if method in ("PATCH", "PUT") and node.set:
                _require(user, node.set, f"setting {node.path}")
                value = node.validate(await self._read_data(request, strict), "data", strict)
                return _reply(await api.handlers.setters[node.path](ctx, value))
            raise _not_allowed(
                request, ["GET"] * bool(node.get) + ["PATCH", "PUT"] * bool(node.set)
            )
        if isinstance(node, Action):
            if method in ("POST", "PUT") and node.trigger:
                _require(user, node.trigger, f"triggering {node.path}")
                data = await self._read_data(request, strict, optional=node.validate is None)
                data = _validate_action_input(node, data, strict)
                return _reply(await api.handlers.triggers[node.path](ctx, data))
            raise _not_allowed(request, ["POST", "PUT"] * bool(node.trigger))
        if method == "GET" and node.get:
            _require(user, node.get, f"reading {node.path or api.model.id}")
            return envelope.success(await self._get_entity(api, node, ctx))
        if method in ("PATCH", "PUT") and node.settable:
            data = await self._read_data(request, strict)
            changes = _entity_changes(node, data, "data", user, strict)
            warnings: list[str] = []
            for prop, value in changes:
                result = await api.handlers.setters[prop.path](ctx, value)
                warnings += result.warnings if result else []
            return envelope.success(warnings=warnings)
        raise _not_allowed(request, ["GET"] * bool(node.get) + ["PATCH", "PUT"] * node.settable)

    def _resolve(self, path: str) -> tuple[BoundApi, Node]:
        segments = path[len(PREFIX) :].split("/")
        if segments[-1] == "":
            segments.pop()  # a trailing slash names the same resource
        api = self.apis.get((segments[0], segments[1])) if len(segments) >= 2 else None
        if api is None:
            raise NotFoundError(path)
        node: Node = api.model.root
        for segment in segments[2:]:
            child = None
            if isinstance(node, Entity):
                child = (
                    node.entities.get(segment)
                    or node.properties.get(segment)
                    or node.actions.get(segment)
                )
            if child is None:
                raise NotFoundError(path)
            node = child
        return api, node

    async def _get_entity(self, api: BoundApi, entity: Entity, ctx: RequestContext) -> Any:
        """The entity's gettable properties and sub-entities the user may read."""
        data: dict[str, Any] = {}
        for prop in entity.properties.values():
            if prop.get and ctx.user.role.grants(prop.get.roles):
                data[prop.name] = await api.handlers.getters[prop.path](ctx)
        for child in entity.entities.values():
            if child.get and ctx.user.role.grants(child.get.roles):
                data[child.name] = await self._get_entity(api, child, ctx)
        return data

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


def _entity_changes(
    entity: Entity, data: Any, path: str, user: User, strict: bool
) -> list[tuple[Property, Any]]:
    """Validate a partial entity update whole before any of it is applied."""
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: must be an object")
    changes: list[tuple[Property, Any]] = []
    for key, value in data.items():
        where = f"{path}.{key}"
        if (prop := entity.properties.get(key)) is not None:
            if prop.set is None:
                raise ValidationError(f"{where}: property is not settable")
            _require(user, prop.set, f"setting {prop.path}")
            changes.append((prop, prop.validate(value, where, strict)))
        elif (child := entity.entities.get(key)) is not None:
            changes += _entity_changes(child, value, where, user, strict)
        elif strict:
            raise ValidationError(f"{where}: unknown field")
    return changes


def _require(user: User, operation: Operation, what: str) -> None:
    if not user.role.grants(operation.roles):
        roles = " or ".join(sorted(operation.roles))
        raise PermissionDeniedError(f"{what} requires the {roles} role")


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


def _reply(result: Result | None) -> Response:
    if result is None:
        return envelope.success()
    if result.has_data:
        return envelope.success(result.data, warnings=result.warnings)
    return envelope.success(warnings=result.warnings)
