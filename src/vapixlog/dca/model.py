"""The DCA model (API definition language, dca-framework.md section 2) as typed objects.

`load_model` reads the JSON document, checks its shape and compiles every data type into a
validator, so that a broken model fails at start-up and never at request time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vapixlog.dca.datatypes import ModelError, TypeCompiler, Validator

ROLES = frozenset({"admin", "operator", "viewer"})
_STATES = ("alpha", "beta", "released")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Operation:
    roles: frozenset[str]


@dataclass(frozen=True)
class Property:
    name: str
    path: str  # dotted, relative to the root entity: "persistent.enabled"
    description: str
    data_type: str | dict[str, Any]
    nullable: bool
    get: Operation | None
    set: Operation | None
    validate: Validator


@dataclass(frozen=True)
class Action:
    name: str
    path: str
    description: str
    request_type: str | None
    response_type: str | None
    trigger: Operation | None
    validate: Validator | None  # None: the action takes no input


@dataclass(frozen=True)
class Entity:
    name: str
    path: str  # "" for the root entity
    description: str
    collection: str
    key_property: str | None
    get: Operation | None
    set: Operation | None
    add: Operation | None
    remove: Operation | None
    properties: dict[str, Property] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)

    @property
    def settable(self) -> bool:
        """Whether PATCH of this entity can change anything."""
        return any(p.set for p in self.properties.values()) or any(
            e.settable for e in self.entities.values()
        )


@dataclass(frozen=True)
class Model:
    id: str
    version: str
    state: str
    document: dict[str, Any]  # the model as loaded, served by discovery as model.json
    root: Entity

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def version_segment(self) -> str:
        """The REST path segment: `v1`, or `v1alpha`/`v1beta` before release."""
        suffix = "" if self.state == "released" else self.state
        return f"v{self.major}{suffix}"


def load_model(source: Path | Mapping[str, Any]) -> Model:
    document = json.loads(source.read_text()) if isinstance(source, Path) else dict(source)
    for key in ("id", "version", "state", "root_entity"):
        if key not in document:
            raise ModelError(f"model has no {key!r}")
    if document["state"] not in _STATES:
        raise ModelError(f"model state must be one of {_STATES}")
    if not re.fullmatch(r"\d+\.\d+\.\d+(-(alpha|beta)\.\d+)?", document["version"]):
        raise ModelError(f"model version {document['version']!r} is not SemVer")
    types = TypeCompiler(document.get("data_types") or {})
    root = _entity("", "", document["root_entity"], types)
    if root.collection != "singleton":
        raise ModelError("the root entity must be a singleton")
    return Model(document["id"], document["version"], document["state"], document, root)


def _operation(spec: Mapping[str, Any], name: str, where: str) -> Operation | None:
    op = (spec.get("operations") or {}).get(name)
    if op is None:
        return None
    roles = frozenset(op.get("roles", ()))
    if not roles <= ROLES:
        raise ModelError(f"{where}: unknown roles {sorted(roles - ROLES)}")
    return Operation(roles)


def _join(parent: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ModelError(f"invalid name {name!r} under {parent or 'the root'}")
    return f"{parent}.{name}" if parent else name


def _entity(name: str, path: str, spec: Mapping[str, Any], types: TypeCompiler) -> Entity:
    collection = spec.get("collection", "singleton")
    if collection not in ("singleton", "map"):
        raise ModelError(f"{path or 'root'}: collection must be 'singleton' or 'map'")
    key_property = spec.get("key_property")
    if collection == "map" and key_property not in (spec.get("properties") or {}):
        raise ModelError(f"{path}: a map needs a key_property among its properties")
    entity = Entity(
        name=name,
        path=path,
        description=spec.get("short_description", ""),
        collection=collection,
        key_property=key_property,
        get=_operation(spec, "get", path),
        set=_operation(spec, "set", path),
        add=_operation(spec, "add", path),
        remove=_operation(spec, "remove", path),
    )
    for prop_name, prop in (spec.get("properties") or {}).items():
        prop_path = _join(path, prop_name)
        nullable = bool(prop.get("nullable", False))
        entity.properties[prop_name] = Property(
            name=prop_name,
            path=prop_path,
            description=prop.get("short_description", ""),
            data_type=prop["data_type"],
            nullable=nullable,
            get=_operation(prop, "get", prop_path),
            set=_operation(prop, "set", prop_path),
            validate=types.compile(prop["data_type"], nullable=nullable),
        )
    for action_name, action in (spec.get("actions") or {}).items():
        action_path = _join(path, action_name)
        request_type = action.get("request_data_type")
        entity.actions[action_name] = Action(
            name=action_name,
            path=action_path,
            description=action.get("short_description", ""),
            request_type=request_type,
            response_type=action.get("response_data_type"),
            trigger=_operation(action, "trigger", action_path),
            validate=types.compile(request_type) if request_type else None,
        )
    for child_name, child in (spec.get("entities") or {}).items():
        if child_name in entity.properties or child_name in entity.actions:
            raise ModelError(f"{path}: {child_name!r} is defined twice")
        entity.entities[child_name] = _entity(child_name, _join(path, child_name), child, types)
    return entity
