"""OpenAPI 3.1 documents generated from DCA models, in the shape of the device's own.

`servers` is `/config/rest`; there is one path per property, entity, map item and action;
request bodies are `{"data": ...}` with `data` required; objects have
`additionalProperties: false`; nullables are `oneOf [..., {"type": "null"}]`; every error
status carries the error envelope schema; Basic and Digest are the security schemes.

The query option `strict=false` (ignore unknown fields instead of refusing them) is left out
on purpose: with it, bodies the schemas here call invalid are accepted, which no OpenAPI
document can express; the descriptions mention it instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vapixlog.dca.binding import BoundApi
from vapixlog.dca.datatypes import BUILTIN_TYPES
from vapixlog.dca.model import Entity, Model
from vapixlog.dca.patterns import portable

Schema = dict[str, Any]
_ERROR_STATUSES = {
    "400": "Validation error (code 5) or malformed request (code 6)",
    "401": "Authentication required or failed (code 3)",
    "403": "The user's role lacks this operation (code 4)",
    "404": "Resource not found (code 1)",
    "409": "An item with this key exists (code 11)",
    "413": "Request body too large (code 7)",
    "415": "Unsupported media type (code 8)",
    "429": "Rate limited (code 9)",
    "503": "Service unavailable, for example rebooting (code 10)",
}
_READ_ERRORS = ("401", "403", "404", "429", "503")
_WRITE_ERRORS = ("400", "401", "403", "404", "413", "415", "429", "503")


def openapi_document(apis: Sequence[BoundApi], *, title: str, version: str) -> dict[str, Any]:
    schemas: dict[str, Schema] = {
        "ErrorEnvelope": _error_envelope(),
    }
    paths: dict[str, Any] = {}
    for api in apis:
        converter = _Converter(api.model, put_only=api.put_only)
        base = f"/{api.model.id}/{api.model.version_segment}"
        _entity_paths(converter, api.model.root, base, [], paths)
        schemas.update(converter.components)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/config/rest"}],
        "security": [{"basicAuth": []}, {"digestAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "digestAuth": {"type": "http", "scheme": "digest"},
            },
        },
    }


def api_openapi(api: BoundApi) -> dict[str, Any]:
    model = api.model
    document = openapi_document(
        [api], title=model.document.get("name", model.id), version=model.version
    )
    document["info"]["description"] = model.document.get("description", "")
    return document


class _Converter:
    """Model data types as JSON Schema, named types as components `<api>.<Name>`."""

    def __init__(self, model: Model, *, put_only: bool = False) -> None:
        self.model = model
        self.put_only = put_only  # AXIS OS 11.10 and older: PUT instead of PATCH and POST
        self.types: dict[str, Any] = model.document.get("data_types") or {}
        self.components: dict[str, Schema] = {}

    def ref(self, name: str) -> Schema:
        component = f"{self.model.id}.{name}"
        if component not in self.components:
            self.components[component] = {}  # placeholder: types may refer to each other
            self.components[component] = self.definition(self.types[name])
        return {"$ref": f"#/components/schemas/{component}"}

    def type(self, spec: str | dict[str, Any], *, nullable: bool = False) -> Schema:
        if isinstance(spec, str):
            schema = self.definition({"type": spec}) if spec in BUILTIN_TYPES else self.ref(spec)
        else:
            schema = self.definition(spec)
        return {"oneOf": [schema, {"type": "null"}]} if nullable else schema

    def definition(self, spec: dict[str, Any]) -> Schema:
        base = spec["type"]
        extra = {k: v for k, v in spec.items() if k not in ("type", "description")}
        if base not in BUILTIN_TYPES:
            named = self.ref(base)
            if not extra:
                return named
            return {"allOf": [named, self.definition({"type": self._builtin(base), **extra})]}
        schema: Schema = {"type": base}
        if "description" in spec:
            schema["description"] = spec["description"]
        for keyword in ("minLength", "maxLength", "enum", "format", "minimum", "maximum"):
            if keyword in spec:
                schema[keyword] = spec[keyword]
        if "pattern" in spec:
            schema["pattern"] = portable(spec["pattern"])
        if base == "array":
            schema["items"] = self.type(spec.get("items", "string"))
            for keyword in ("minItems", "maxItems"):
                if keyword in spec:
                    schema[keyword] = spec[keyword]
        if base == "object":
            fields = spec.get("fields") or {}
            schema["properties"] = {
                name: self.type(field["type"], nullable=bool(field.get("nullable")))
                for name, field in fields.items()
            }
            required = [
                name
                for name, field in fields.items()
                if not field.get("nullable") and not field.get("optional")
            ]
            if required:
                schema["required"] = required
            schema["additionalProperties"] = False
        return schema

    def _builtin(self, name: str) -> str:
        while name not in BUILTIN_TYPES:
            name = self.types[name]["type"]
        return name

    def entity(self, entity: Entity) -> Schema:
        """What GET of the entity answers (properties the role may not read are left out)."""
        properties: dict[str, Schema] = {}
        for prop in entity.properties.values():
            if prop.get:
                properties[prop.name] = self.type(prop.data_type, nullable=prop.nullable)
        for child in entity.entities.values():
            if child.get:
                item = self.entity(child)
                properties[child.name] = (
                    {"type": "array", "items": item} if child.collection == "map" else item
                )
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def entity_patch(self, entity: Entity) -> Schema:
        properties: dict[str, Schema] = {}
        for prop in entity.properties.values():
            if prop.set:
                properties[prop.name] = self.type(prop.data_type, nullable=prop.nullable)
        for child in entity.entities.values():
            if child.collection == "singleton" and child.settable:
                properties[child.name] = self.entity_patch(child)
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def new_item(self, entity: Entity) -> Schema:
        properties = {
            prop.name: self.type(prop.data_type, nullable=prop.nullable)
            for prop in entity.properties.values()
        }
        return {
            "type": "object",
            "properties": properties,
            "required": [entity.key_property],
            "additionalProperties": False,
        }


def _entity_paths(
    converter: _Converter, entity: Entity, url: str, params: list[Schema], paths: dict[str, Any]
) -> None:
    name = f"{converter.model.id}.{entity.path}" if entity.path else converter.model.id
    if entity.collection == "map":
        collection: dict[str, Any] = {}
        if entity.get:
            items = {"type": "array", "items": converter.entity(entity)}
            collection["get"] = _operation(f"{name}.list", entity.get.roles, params, data=items)
        if entity.add:
            collection["post"] = _operation(
                f"{name}.add",
                entity.add.roles,
                params,
                body=converter.new_item(entity),
                status="201",
                errors=(*_WRITE_ERRORS, "409"),
            )
        if collection:
            paths[url] = collection
        key = f"{entity.name}Key"
        params = [
            *params,
            {"name": key, "in": "path", "required": True, "schema": {"type": "string"}},
        ]
        url = f"{url}/{{{key}}}"
    operations: dict[str, Any] = {}
    if entity.get:
        operations["get"] = _operation(
            f"{name}.get", entity.get.roles, params, data=converter.entity(entity)
        )
    if entity.settable:
        roles = {role for prop in entity.properties.values() if prop.set for role in prop.set.roles}
        operations["patch"] = _operation(
            f"{name}.set", frozenset(roles), params, body=converter.entity_patch(entity)
        )
    if entity.collection == "map" and entity.remove:
        operations["delete"] = _operation(f"{name}.remove", entity.remove.roles, params)
    if "patch" in operations:
        operations = _with_legacy_put(operations, "patch", converter.put_only)
    if operations:
        paths[url] = operations
    for prop in entity.properties.values():
        prop_ops: dict[str, Any] = {}
        schema = converter.type(prop.data_type, nullable=prop.nullable)
        if prop.get:
            prop_ops["get"] = _operation(
                f"{converter.model.id}.{prop.path}.get",
                prop.get.roles,
                params,
                data=schema,
                description=prop.description,
            )
        if prop.set:
            prop_ops["patch"] = _operation(
                f"{converter.model.id}.{prop.path}.set",
                prop.set.roles,
                params,
                body=schema,
                description=prop.description,
            )
        if "patch" in prop_ops:
            prop_ops = _with_legacy_put(prop_ops, "patch", converter.put_only)
        if prop_ops:
            paths[f"{url}/{prop.name}"] = prop_ops
    for action in entity.actions.values():
        if action.trigger:
            request = converter.type(action.request_type) if action.request_type else _EMPTY
            post = _operation(
                f"{converter.model.id}.{action.path}",
                action.trigger.roles,
                params,
                body=request,
                description=action.description,
            )
            if not action.request_type:
                # No input: `data` may be left out. The body stays required: without a JSON
                # Content-Type the request is refused (a browser's cross-site POST has none).
                del post["requestBody"]["content"]["application/json"]["schema"]["required"]
            put = _with_legacy_put({"post": post}, "post", converter.put_only)
            paths[f"{url}/{action.name}"] = put
    for child in entity.entities.values():
        _entity_paths(converter, child, f"{url}/{child.name}", params, paths)


_EMPTY: Schema = {"type": "object", "properties": {}, "additionalProperties": False}


def _with_legacy_put(operations: dict[str, Any], source: str, put_only: bool) -> dict[str, Any]:
    """Add PUT, the alias of set and trigger that AXIS OS 11.10 and older used; with
    `put_only` (those versions themselves) PUT replaces `source`."""
    if put_only:
        return {**{k: v for k, v in operations.items() if k != source}, "put": operations[source]}
    legacy = dict(operations[source])
    legacy["operationId"] = f"{legacy['operationId']}.put"
    legacy["deprecated"] = True
    legacy["description"] = f"Legacy alias of {source.upper()}. {legacy['description']}"
    return {**operations, "put": legacy}


def _operation(
    operation_id: str,
    roles: frozenset[str],
    params: list[Schema],
    *,
    data: Schema | None = None,
    body: Schema | None = None,
    status: str = "200",
    errors: tuple[str, ...] | None = None,
    description: str = "",
) -> dict[str, Any]:
    success: Schema = {
        "type": "object",
        "properties": {
            "status": {"const": "success"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "information": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["status"],
        "additionalProperties": False,
    }
    if data is not None:
        success["properties"]["data"] = data
        success["required"] = ["status", "data"]
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "description": f"{description} Roles: {', '.join(sorted(roles))}.".strip()
        + (" Add ?strict=false to ignore unknown fields." if body is not None else ""),
        "parameters": list(params),
        "responses": {
            status: {"description": "Success", "content": _json(success)},
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json(
                {
                    "type": "object",
                    "properties": {"data": body},
                    "required": ["data"],
                    "additionalProperties": False,
                }
            ),
        }
    chosen = errors or (_WRITE_ERRORS if body is not None else _READ_ERRORS)
    for code in chosen:
        operation["responses"][code] = {
            "description": _ERROR_STATUSES[code],
            "content": _json({"$ref": "#/components/schemas/ErrorEnvelope"}),
        }
    return operation


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _error_envelope() -> Schema:
    return {
        "type": "object",
        "properties": {
            "status": {"const": "error"},
            "error": {
                "type": "object",
                "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
                "required": ["code", "message"],
                "additionalProperties": False,
            },
        },
        "required": ["status", "error"],
        "additionalProperties": False,
    }
