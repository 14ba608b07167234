"""Binding behaviour to a model: handlers registered by dotted model path.

The model says what exists and who may do what; a `Handlers` object says what happens.
`BoundApi` checks that the two match, so a missing or misspelt handler fails at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from vapixlog.auth.users import User
from vapixlog.dca.datatypes import ModelError
from vapixlog.dca.model import Entity, Model


class RequestContext(NamedTuple):
    """Who is asking and about which map items, passed to every handler (one per request:
    a named tuple is made in half the time of a frozen dataclass)."""

    user: User
    client: str  # the client's address, for audit entries
    keys: tuple[str, ...] = ()  # keys of the map items along the path, outermost first


@dataclass
class Result:
    """What a setter or action may answer besides plain success."""

    data: Any = None
    has_data: bool = False
    warnings: list[str] = field(default_factory=list)


Getter = Callable[[RequestContext], Awaitable[Any]]
Setter = Callable[[RequestContext, Any], Awaitable[Result | None]]
Trigger = Callable[[RequestContext, Any], Awaitable[Result | None]]
KeyLister = Callable[[RequestContext], Awaitable[list[str]]]
Adder = Callable[[RequestContext, dict[str, Any]], Awaitable[Result | None]]
Remover = Callable[[RequestContext], Awaitable[Result | None]]
F = TypeVar("F")


class Handlers:
    """Handlers of one API, keyed by dotted path below the root (`persistent.enabled`)."""

    def __init__(self) -> None:
        self.getters: dict[str, Getter] = {}
        self.setters: dict[str, Setter] = {}
        self.triggers: dict[str, Trigger] = {}
        # Map entities: the keys of their items, and adding and removing items.
        self.key_listers: dict[str, KeyLister] = {}
        self.adders: dict[str, Adder] = {}
        self.removers: dict[str, Remover] = {}

    def getter(self, path: str) -> Callable[[Getter], Getter]:
        return _register(self.getters, path)

    def setter(self, path: str) -> Callable[[Setter], Setter]:
        return _register(self.setters, path)

    def trigger(self, path: str) -> Callable[[Trigger], Trigger]:
        return _register(self.triggers, path)

    def keys(self, path: str) -> Callable[[KeyLister], KeyLister]:
        return _register(self.key_listers, path)

    def adder(self, path: str) -> Callable[[Adder], Adder]:
        return _register(self.adders, path)

    def remover(self, path: str) -> Callable[[Remover], Remover]:
        return _register(self.removers, path)


def _register(table: dict[str, F], path: str) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        table[path] = func
        return func

    return decorate


class BoundApi:
    """One model with its handlers, served at its version segment and any aliases.

    `put_only`: the API as AXIS OS 11.10 and older serve it, PUT for set and trigger (PATCH
    and POST answer 405); otherwise PATCH and POST, with PUT as their legacy alias."""

    def __init__(
        self,
        model: Model,
        handlers: Handlers,
        *,
        aliases: tuple[str, ...] = (),
        put_only: bool = False,
    ) -> None:
        self.model = model
        self.handlers = handlers
        self.aliases = aliases
        self.put_only = put_only
        self.set_methods = ("PUT",) if put_only else ("PATCH", "PUT")
        self.trigger_methods = ("PUT",) if put_only else ("POST", "PUT")
        self._check()

    @property
    def version_segments(self) -> tuple[str, ...]:
        return (self.model.version_segment, *self.aliases)

    def _check(self) -> None:
        wanted: dict[str, set[str]] = {kind: set() for kind in _HANDLER_KINDS}
        for entity in _walk(self.model.root):
            if entity.collection == "map":
                wanted["keys"].add(entity.path)
                if entity.add:
                    wanted["adder"].add(entity.path)
                if entity.remove:
                    wanted["remover"].add(entity.path)
            for prop in entity.properties.values():
                if prop.get:
                    wanted["getter"].add(prop.path)
                if prop.set:
                    wanted["setter"].add(prop.path)
            for action in entity.actions.values():
                if action.trigger:
                    wanted["trigger"].add(action.path)
        for kind, attribute in _HANDLER_KINDS.items():
            have: dict[str, Any] = getattr(self.handlers, attribute)
            if missing := wanted[kind] - have.keys():
                raise ModelError(f"{self.model.id}: no {kind} for {sorted(missing)}")
            if unknown := have.keys() - wanted[kind]:
                raise ModelError(f"{self.model.id}: {kind} for unknown paths {sorted(unknown)}")


_HANDLER_KINDS = {
    "getter": "getters",
    "setter": "setters",
    "trigger": "triggers",
    "keys": "key_listers",
    "adder": "adders",
    "remover": "removers",
}


def _walk(entity: Entity) -> Iterator[Entity]:
    yield entity
    for child in entity.entities.values():
        yield from _walk(child)
