"""The REST mapping of DCA APIs (dca-framework.md section 3) as one ASGI app.

The request path is read top to bottom in `DcaApp.handle`: find the API and the model node,
check the method, check the role, read and validate the body, call the bound handler, answer
with the envelope. Every failure is a `DcaError`; nothing a client sends can cause a 500.

It is the hot path of the service (every `writeMessage`), so it is pure ASGI: the scope is
read directly (no Starlette `Request`, `URL` or `Headers` objects), the body is received
without a stream wrapper, the answer is two `send` calls, and the node a path names is
looked up once per distinct path (`docs/benchmarks.md` has the figures).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from vapixlog.auth.users import User
from vapixlog.body import is_json
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
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from vapixlog.dca.model import Action, Property
from vapixlog.dca.resources import (
    Target,
    ensure_items_exist,
    entity_changes,
    new_item,
    read_collection,
    read_entity,
    require,
    resolve,
)
from vapixlog.edge.headers import NOSNIFF

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY = 64 * 1024
_ABSENT: Any = object()
_TARGET_CACHE_SIZE = 1024  # distinct request paths whose resolution is kept
_JSON_TYPE = (b"content-type", envelope.JSON.encode())
_JSON_HEADERS = (_JSON_TYPE, NOSNIFF)  # JSON, never sniffed: hardened here, not by a wrapper


class DcaRequest:
    """What `DcaApp.handle` needs of one request, read straight from the ASGI scope."""

    __slots__ = ("_receive", "method", "path", "raw_path", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        # HEAD is answered as GET without the body (DECISIONS 16).
        method: str = scope["method"]
        self.method = "GET" if method == "HEAD" else method
        self.path: str = scope["path"]
        raw: bytes | None = scope.get("raw_path")
        self.raw_path = raw.decode("latin-1") if raw else self.path

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    def header(self, name: bytes) -> str | None:
        """The first value of the header `name` (lower case), as Starlette's `Headers`.

        ASGI servers send header names in lower case, which Starlette relies on too.
        """
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value).decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        """The last value of a query parameter, as Starlette's `QueryParams`."""
        query: bytes = self.scope.get("query_string", b"")
        if not query:
            return None
        params = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        return params.get(name)

    async def body(self, limit: int) -> bytes | None:
        """The body, or None as soon as it is known to exceed `limit` bytes.

        A declared `Content-Length` over the limit is refused before any of the body is read.
        """
        declared = self.header(b"content-length") or ""
        if declared.isdigit() and int(declared) > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Reply:
    """A JSON answer: status, envelope bytes and extra headers."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers

    async def send(self, send: Send, *, head: bool = False) -> None:
        """Send it; for a HEAD request the headers only (with the GET's Content-Length)."""
        # The headers of Starlette's `Response(media_type="application/json")`, and nosniff.
        headers = (
            [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in self.headers.items()
            ]
            if self.headers
            else []
        )
        headers.append((b"content-length", b"%d" % len(self.body)))
        headers += _JSON_HEADERS
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else self.body})


def _success(data: Any = envelope.NO_DATA, *, warnings: list[str] | None = None) -> Reply:
    return Reply(envelope.success_body(data, warnings=warnings))


def _error(exc: DcaError) -> Reply:
    return Reply(envelope.error_body(exc.code, exc.message), exc.status, exc.headers)


class DcaApp:
    """Serves every bound API under `/config/rest/<api>/<version>/...`."""

    def __init__(
        self,
        apis: Iterable[BoundApi],
        *,
        max_body: int = DEFAULT_MAX_BODY,
        unavailable: Callable[[], str | None] | None = None,
    ) -> None:
        self.max_body = max_body
        # Why the service cannot serve now (e.g. "the device is rebooting"): 503, code 10.
        self.unavailable = unavailable
        self.apis: dict[tuple[str, str], BoundApi] = {}
        for api in apis:
            for segment in api.version_segments:
                self.apis[(api.model.id, segment)] = api
        # raw path -> what it names; the model does not change, so neither does the answer.
        self._targets: dict[str, Target] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = DcaRequest(scope, receive)
        try:
            reply = await self.handle(request)
        except DcaError as exc:
            reply = _error(exc)
        except ClientDisconnect:
            return
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            reply = _error(InternalError("unexpected failure, see the service log"))
        await reply.send(send, head=scope["method"] == "HEAD")

    def _resolve(self, raw_path: str) -> Target:
        target = self._targets.get(raw_path)
        if target is None:
            target = resolve(self.apis, raw_path)  # raises NotFoundError: nothing cached
            if len(self._targets) >= _TARGET_CACHE_SIZE:
                self._targets.clear()
            self._targets[raw_path] = target
        return target

    async def handle(self, request: DcaRequest) -> Reply:
        user = request.scope.get("vapixlog.user")
        if not isinstance(user, User):
            raise AuthenticationError()
        if self.unavailable is not None and (reason := self.unavailable()):
            raise ServiceUnavailableError(reason, headers={"Retry-After": "5"})
        path = request.path
        target = self._resolve(request.raw_path)
        ctx = RequestContext(user, request.client, target.keys)
        if target.maps:
            await ensure_items_exist(target, ctx, path)
        strict = _strict(request)
        api, node, method = target.api, target.node, request.method
        handlers = api.handlers
        if isinstance(node, Property):
            if method == "GET" and node.get:
                require(user, node.get, f"reading {node.path}")
                return _success(await handlers.getters[node.path](ctx))
            if method in api.set_methods and node.set:
                require(user, node.set, f"setting {node.path}")
                value = node.validate(await self._read_data(request, strict), "data", strict)
                return _reply(await handlers.setters[node.path](ctx, value))
            raise _not_allowed(request, api, get=node.get, set=node.set)
        if isinstance(node, Action):
            if method in api.trigger_methods and node.trigger:
                require(user, node.trigger, f"triggering {node.path}")
                data = await self._read_data(request, strict, optional=node.validate is None)
                data = _validate_action_input(node, data, strict)
                return _reply(await handlers.triggers[node.path](ctx, data))
            raise _not_allowed(request, api, trigger=node.trigger)
        name = node.path or target.api.model.id
        if target.collection:
            if method == "GET" and node.get:
                require(user, node.get, f"reading {name}")
                return _success(await read_collection(target.api, node, ctx))
            if method == "POST" and node.add:
                require(user, node.add, f"adding to {name}")
                item = new_item(node, await self._read_data(request, strict), strict)
                key = item[node.key_property or ""]
                if key in await handlers.key_listers[node.path](ctx):
                    raise ConflictError(f"{name} already has an item {key!r}")
                return _reply(await handlers.adders[node.path](ctx, item), status=201)
            raise _not_allowed(request, api, get=node.get, add=node.add)
        if method == "GET" and node.get:
            require(user, node.get, f"reading {name}")
            return _success(await read_entity(target.api, node, ctx))
        if method in api.set_methods and node.settable:
            changes = entity_changes(
                node, await self._read_data(request, strict), "data", user, strict
            )
            warnings: list[str] = []
            for prop, value in changes:
                result = await handlers.setters[prop.path](ctx, value)
                warnings += result.warnings if result else []
            return _success(warnings=warnings)
        is_item = node.collection == "map"
        if method == "DELETE" and is_item and node.remove:
            require(user, node.remove, f"removing from {name}")
            return _reply(await handlers.removers[node.path](ctx))
        remove = node.remove if is_item else None
        raise _not_allowed(request, api, get=node.get, set=node.settable, remove=remove)

    async def _read_data(self, request: DcaRequest, strict: bool, *, optional: bool = False) -> Any:
        """The `data` member of a JSON body of at most `max_body` bytes."""
        # Required even without a body: a browser sends text/plain, form encodings or
        # nothing cross-site without asking first (CORS), never application/json.
        content_type = request.header(b"content-type")
        if content_type is None or not is_json(content_type):
            given = "no Content-Type" if content_type is None else repr(content_type)
            raise UnsupportedMediaTypeError(f"{given}, send application/json")
        raw = await request.body(self.max_body)
        if raw is None:
            raise PayloadTooLargeError(f"the limit is {self.max_body} bytes")
        if not raw and optional:
            return _ABSENT
        if not raw.strip():  # whitespace is not "no body": it is a body that is not JSON
            what = "the body is only whitespace" if raw else "empty body"
            alone = " or no body" if optional else ""
            raise MalformedRequestError(f'{what}, send {{"data": ...}}{alone}')
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise MalformedRequestError(f"body is not valid JSON ({exc})") from None
        if not isinstance(body, dict):
            raise MalformedRequestError('the body must be a JSON object {"data": ...}')
        if "data" not in body and not optional:
            raise MalformedRequestError("the body has no 'data' member")
        if strict and len(body) > ("data" in body) and (extra := sorted(body.keys() - {"data"})):
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


def _not_allowed(
    request: DcaRequest,
    api: BoundApi,
    *,
    get: object = None,
    set: object = None,
    trigger: object = None,
    add: object = None,
    remove: object = None,
) -> MethodNotAllowedError:
    """405 with an `Allow` header: the methods of the operations that exist, in a fixed
    order, without duplicates (PUT both sets and triggers)."""
    methods: list[str] = []
    for operation, names in (
        (get, ("GET",)),
        (add, ("POST",)),
        (set, api.set_methods),
        (trigger, api.trigger_methods),
        (remove, ("DELETE",)),
    ):
        if operation:
            methods += [name for name in names if name not in methods]
    detail = f"{request.method} on {request.path}"
    return MethodNotAllowedError(detail, allow=methods)


def _strict(request: DcaRequest) -> bool:
    value = (request.query("strict") or "true").lower()
    if value not in ("true", "false"):
        raise ValidationError("strict: must be true or false")
    return value == "true"


_SUCCESS = Reply(envelope.SUCCESS)  # the answer of most requests, made once


def _reply(result: Result | None, *, status: int = 200) -> Reply:
    if result is None:
        return _SUCCESS if status == 200 else Reply(envelope.SUCCESS, status)
    data = result.data if result.has_data else envelope.NO_DATA
    return Reply(envelope.success_body(data, warnings=result.warnings), status)
