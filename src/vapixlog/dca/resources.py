"""Resources of a model: which node a URL names, and reading or changing whole entities.

A path below `/config/rest/<api>/<version>` names entities, properties and actions by name,
dots becoming slashes; below a map entity the next segment is an item's key
(percent-encoded), as in `.../things/a%2Fb/name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from vapixlog.auth.users import User
from vapixlog.dca.binding import BoundApi, RequestContext
from vapixlog.dca.errors import NotFoundError, PermissionDeniedError, ValidationError
from vapixlog.dca.model import Action, Entity, Operation, Property

PREFIX = "/config/rest/"
Node = Entity | Property | Action


@dataclass(frozen=True)
class Target:
    """What a request path names."""

    api: BoundApi
    node: Node
    keys: tuple[str, ...]  # map keys along the path, outermost first
    maps: tuple[Entity, ...]  # the map entity each key belongs to
    collection: bool  # a map entity named without a key: the whole collection


def resolve(apis: Mapping[tuple[str, str], BoundApi], raw_path: str) -> Target:
    """The node a path names; `raw_path` is still percent-encoded so keys may hold '/'."""
    segments = [unquote(part) for part in raw_path[len(PREFIX) :].split("/")]
    if segments[-1] == "":
        segments.pop()  # a trailing slash names the same resource
    api = apis.get((segments[0], segments[1])) if len(segments) >= 2 else None
    if api is None:
        raise NotFoundError(unquote(raw_path))
    node: Node = api.model.root
    keys: list[str] = []
    maps: list[Entity] = []
    collection = False
    for segment in segments[2:]:
        if collection:
            assert isinstance(node, Entity)
            keys.append(segment)
            maps.append(node)
            collection = False
            continue
        child = _child(node, segment)
        if child is None:
            raise NotFoundError(unquote(raw_path))
        node = child
        collection = isinstance(child, Entity) and child.collection == "map"
    return Target(api, node, tuple(keys), tuple(maps), collection)


def _child(node: Node, name: str) -> Node | None:
    if not isinstance(node, Entity):
        return None
    return node.entities.get(name) or node.properties.get(name) or node.actions.get(name)


async def ensure_items_exist(target: Target, ctx: RequestContext, path: str) -> None:
    """404 unless every map item named on the path exists."""
    for depth, entity in enumerate(target.maps):
        scope = RequestContext(ctx.user, ctx.client, target.keys[:depth])
        if target.keys[depth] not in await target.api.handlers.key_listers[entity.path](scope):
            raise NotFoundError(path)


def require(user: User, operation: Operation, what: str) -> None:
    if not user.role.grants(operation.roles):
        roles = " or ".join(sorted(operation.roles))
        raise PermissionDeniedError(f"{what} requires the {roles} role")


async def read_entity(api: BoundApi, entity: Entity, ctx: RequestContext) -> dict[str, Any]:
    """The entity's gettable properties and sub-entities that the user may read."""
    data: dict[str, Any] = {}
    for prop in entity.properties.values():
        if prop.get and ctx.user.role.grants(prop.get.roles):
            data[prop.name] = await api.handlers.getters[prop.path](ctx)
    for child in entity.entities.values():
        if child.get and ctx.user.role.grants(child.get.roles):
            if child.collection == "map":
                data[child.name] = await read_collection(api, child, ctx)
            else:
                data[child.name] = await read_entity(api, child, ctx)
    return data


async def read_collection(api: BoundApi, entity: Entity, ctx: RequestContext) -> list[Any]:
    items = []
    for key in await api.handlers.key_listers[entity.path](ctx):
        item_ctx = RequestContext(ctx.user, ctx.client, (*ctx.keys, key))
        items.append(await read_entity(api, entity, item_ctx))
    return items


def entity_changes(
    entity: Entity, data: Any, path: str, user: User, strict: bool
) -> list[tuple[Property, Any]]:
    """Validate a partial update of a singleton entity whole, before any of it is applied."""
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: must be an object")
    changes: list[tuple[Property, Any]] = []
    for key, value in data.items():
        where = f"{path}.{key}"
        if (prop := entity.properties.get(key)) is not None:
            if prop.set is None:
                raise ValidationError(f"{where}: property is not settable")
            require(user, prop.set, f"setting {prop.path}")
            changes.append((prop, prop.validate(value, where, strict)))
        elif (child := entity.entities.get(key)) is not None and child.collection == "singleton":
            changes += entity_changes(child, value, where, user, strict)
        elif child is not None:
            raise ValidationError(f"{where}: a collection; change its items at their own path")
        elif strict:
            raise ValidationError(f"{where}: unknown field")
    return changes


def new_item(entity: Entity, data: Any, strict: bool) -> dict[str, Any]:
    """Validate the properties of an item to add to a map; its key property is required."""
    if not isinstance(data, dict):
        raise ValidationError("data: must be an object")
    item: dict[str, Any] = {}
    for key, value in data.items():
        if (prop := entity.properties.get(key)) is not None:
            item[key] = prop.validate(value, f"data.{key}", strict)
        elif strict:
            raise ValidationError(f"data.{key}: unknown field")
    assert entity.key_property is not None
    if not isinstance(item.get(entity.key_property), str):
        raise ValidationError(f"data.{entity.key_property}: required key is missing")
    return item
