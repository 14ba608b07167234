"""The grammar of a fault (`vapixlog serve --fault SPEC`, the control endpoint, the fixture).

    SPEC   = TARGET ":" ITEM ("," ITEM)*
    TARGET = NAME                       an operation by name (`OPERATIONS`)
           | [METHOD " "] GLOB          a path glob (fnmatch), e.g. "POST /axis-cgi/*"
    ITEM   = ACTION | WHEN              exactly one ACTION, at most one WHEN

    ACTION on any target (the request):
        delay=SECONDS       answer that much later
        status=CODE         answer CODE in the endpoint's dialect; the request is not handled
        reset=request       reset the connection before the request is handled
        reset=before        handle the request, reset the connection instead of its answer
        reset=after         send the response head, then reset the connection
        truncate=BYTES      send the first BYTES of the body, then close the connection
        slow=BYTES_PER_S    send the body at this rate
    ACTION of the device (target `reboot` or `report` only):
        hang                (reboot) the device never comes back
        downtime=SECONDS    (reboot) the device is down this long
        keep-bootid         (reboot) the new boot has the old boot id
        takes=SECONDS       (report) the body comes that long after the head
    WHEN (default: always):
        always | first=N | every=N | p=PROBABILITY[,seed=S]   (seed default 0)

`parse` raises `FaultSpecError` with a message that names the fault and what is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

# name -> (methods or None for any, path globs, JSON-RPC method or None)
OPERATIONS: dict[str, tuple[frozenset[str] | None, tuple[str, ...], str | None]] = {
    "writeMessage": (frozenset({"POST"}), ("/config/rest/log/*/writeMessage",), None),
    "persistent": (None, ("/config/rest/log/*/persistent/enabled",), None),
    "clearLog": (frozenset({"POST"}), ("/config/rest/log/*/persistent/clearLog",), None),
    "dca": (None, ("/config/rest/*",), None),
    "reboot": (
        frozenset({"POST", "GET"}),
        ("/axis-cgi/firmwaremanagement.cgi", "/axis-cgi/restart.cgi"),
        "reboot",
    ),
    "firmware": (None, ("/axis-cgi/firmwaremanagement.cgi",), None),
    "restart": (None, ("/axis-cgi/restart.cgi",), None),
    "report": (None, ("/axis-cgi/serverreport.cgi",), None),
    "systemready": (None, ("/axis-cgi/systemready.cgi",), None),
    "remotesyslog": (None, ("/axis-cgi/remotesyslog.cgi",), None),
    "apidiscovery": (None, ("/axis-cgi/apidiscovery.cgi",), None),
    "systemlog": (None, ("/axis-cgi/systemlog.cgi", "/axis-cgi/admin/systemlog.cgi"), None),
    "accesslog": (None, ("/axis-cgi/accesslog.cgi", "/axis-cgi/admin/accesslog.cgi"), None),
    "auditlog": (None, ("/axis-cgi/auditlog.cgi", "/axis-cgi/admin/auditlog.cgi"), None),
}
RESET_POINTS = ("request", "before", "after")
HTTP_ACTIONS = ("delay", "status", "reset", "truncate", "slow")
DEVICE_ACTIONS = {
    "hang": "reboot",
    "downtime": "reboot",
    "keep-bootid": "reboot",
    "takes": "report",
}
_METHOD = re.compile(r"[A-Z]{3,10}")
_MAX_SECONDS = 3600.0

ActionKind = Literal[
    "delay", "status", "reset", "truncate", "slow", "hang", "downtime", "keep-bootid", "takes"
]


class FaultSpecError(ValueError):
    """A fault that cannot be read; the message says which and why."""


@dataclass(frozen=True)
class Target:
    methods: frozenset[str] | None  # None: any method
    globs: tuple[str, ...]
    rpc_method: str | None = None  # JSON-RPC CGIs: only calls of this method
    name: str | None = None  # the operation's name, when given by name


@dataclass(frozen=True)
class When:
    first: int | None = None  # the first N matching requests
    every: int | None = None  # the Nth, 2Nth, ... matching request
    probability: float | None = None  # each matching request, from `seed`
    seed: int = 0


@dataclass(frozen=True)
class Fault:
    text: str  # as written (normalised by `str`)
    target: Target
    action: ActionKind
    value: float | str | None  # seconds, a status, bytes, bytes/s, a reset point, or None
    when: When

    @property
    def device_level(self) -> bool:
        """Carried out by the device's server (a reboot), not by the edge layer."""
        return self.action in ("hang", "downtime", "keep-bootid")

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Fault:
    """One fault from its SPEC (see the module doc)."""
    spec = text.strip()
    head, colon, tail = spec.rpartition(":")
    if not colon or not head.strip() or not tail.strip():
        raise FaultSpecError(f"fault {text!r}: expected TARGET:ACTION[,WHEN], e.g. report:delay=5")
    target = _target(head.strip(), text)
    action: tuple[ActionKind, float | str | None] | None = None
    when: dict[str, float] = {}
    for item in (part.strip() for part in tail.split(",")):
        key, equals, value = item.partition("=")
        key = key.strip()
        if key in ("always", "first", "every", "p", "seed"):
            if key in when:
                raise FaultSpecError(f"fault {text!r}: {key} given twice")
            when[key] = 0 if key == "always" else _number(key, value, text)
        elif key in HTTP_ACTIONS or key in DEVICE_ACTIONS:
            if action is not None:
                raise FaultSpecError(
                    f"fault {text!r}: one action per fault ({action[0]} and {key}); "
                    "give --fault again for another"
                )
            action = _action(key, value if equals else None, target, text)
        else:
            raise FaultSpecError(f"fault {text!r}: unknown item {item!r}")
    if action is None:
        raise FaultSpecError(f"fault {text!r}: no action (delay, status, reset, ...)")
    return Fault(spec, target, action[0], action[1], _when(when, text))


def _target(head: str, text: str) -> Target:
    if head in OPERATIONS:
        methods, globs, rpc = OPERATIONS[head]
        return Target(methods, globs, rpc, name=head)
    method, space, glob = head.partition(" ")
    if not space:
        method, glob = "", head
    glob = glob.strip()
    if not glob.startswith("/"):
        known = ", ".join(OPERATIONS)
        raise FaultSpecError(
            f"fault {text!r}: unknown target {head!r}; use a path glob starting with / "
            f"(optionally after a method) or one of: {known}"
        )
    if method and not _METHOD.fullmatch(method):
        raise FaultSpecError(f"fault {text!r}: {method!r} is not an HTTP method")
    return Target(frozenset({method}) if method else None, (glob,))


def _action(
    key: str, value: str | None, target: Target, text: str
) -> tuple[ActionKind, float | str | None]:
    if key in DEVICE_ACTIONS:
        if target.name != DEVICE_ACTIONS[key]:
            raise FaultSpecError(f"fault {text!r}: {key} applies to {DEVICE_ACTIONS[key]} only")
        if key in ("hang", "keep-bootid"):
            if value is not None:
                raise FaultSpecError(f"fault {text!r}: {key} takes no value")
            return ("hang" if key == "hang" else "keep-bootid"), None
        return ("downtime" if key == "downtime" else "takes"), _seconds(key, value, text)
    if value is None:
        raise FaultSpecError(f"fault {text!r}: {key} needs a value ({key}=...)")
    if key == "delay":
        return "delay", _seconds(key, value, text)
    if key == "reset":
        if value not in RESET_POINTS:
            raise FaultSpecError(f"fault {text!r}: reset={value!r}; use request, before or after")
        return "reset", value
    number = _number(key, value, text)
    if key == "status":
        if not (number.is_integer() and 400 <= number <= 599):
            raise FaultSpecError(f"fault {text!r}: status must be 400..599, not {value}")
        return "status", int(number)
    if not (number.is_integer() and number >= (1 if key == "slow" else 0)):
        raise FaultSpecError(f"fault {text!r}: {key} takes a whole number of bytes, not {value}")
    return ("slow" if key == "slow" else "truncate"), int(number)


def _when(given: dict[str, float], text: str) -> When:
    chosen = [key for key in ("always", "first", "every", "p") if key in given]
    if len(chosen) > 1:
        raise FaultSpecError(f"fault {text!r}: use one of always, first, every, p (not both)")
    if "seed" in given and "p" not in given:
        raise FaultSpecError(f"fault {text!r}: seed goes with p")
    for key in ("first", "every", "seed"):
        if key in given and not (given[key].is_integer() and given[key] >= (key != "seed")):
            raise FaultSpecError(f"fault {text!r}: {key} takes a positive whole number")
    if "p" in given and not 0 <= given["p"] <= 1:
        raise FaultSpecError(f"fault {text!r}: p is a probability, 0..1")
    return When(
        first=int(given["first"]) if "first" in given else None,
        every=int(given["every"]) if "every" in given else None,
        probability=given.get("p"),
        seed=int(given.get("seed", 0)),
    )


def _number(key: str, value: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FaultSpecError(f"fault {text!r}: {key}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise FaultSpecError(f"fault {text!r}: {key}={value!r} is not a finite number")
    return number


def _seconds(key: str, value: str | None, text: str) -> float:
    if value is None:
        raise FaultSpecError(f"fault {text!r}: {key} needs seconds ({key}=SECONDS)")
    seconds = _number(key, value.removesuffix("s"), text)
    if not 0 <= seconds <= _MAX_SECONDS:
        raise FaultSpecError(f"fault {text!r}: {key} must be 0..{_MAX_SECONDS:g} seconds")
    return seconds
