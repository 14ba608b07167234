"""The faults one device is asked to show, and when each fires (deterministically).

A `FaultPlan` belongs to a device's server and outlives its reboots. Each fault counts the
requests (or reboots) it matched: `first=N` fires on counts 1..N, `every=N` on N, 2N, ...,
`p=P,seed=S` draws from its own `random.Random(S)`, so the same requests in the same order
meet the same faults on every run. Replacing the faults (`set`) starts the counts again.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from vapixlog.faults.spec import Fault, parse


@dataclass
class _Armed:
    fault: Fault
    seen: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def fires(self) -> bool:
        self.seen += 1
        when = self.fault.when
        if when.first is not None:
            return self.seen <= when.first
        if when.every is not None:
            return self.seen % when.every == 0
        if when.probability is not None:
            return self.rng.random() < when.probability
        return True


@dataclass(frozen=True)
class RebootFaults:
    """How the next boot comes: `downtime` None is the server's own, inf never."""

    downtime: float | None = None
    keep_boot_id: bool = False


class FaultPlan:
    """A device's faults; `needs_rpc_method(path)` tells the edge to read a JSON-RPC call's
    method before matching."""

    def __init__(self, faults: Iterable[Fault | str] = ()) -> None:
        self._armed: list[_Armed] = []
        self.set(faults)

    def set(self, faults: Iterable[Fault | str]) -> None:
        """Replace every fault (strings are parsed first: nothing changes on an error)."""
        parsed = [parse(fault) if isinstance(fault, str) else fault for fault in faults]
        self._armed = [_arm(fault) for fault in parsed]

    def add(self, faults: Iterable[Fault | str]) -> None:
        parsed = [parse(fault) if isinstance(fault, str) else fault for fault in faults]
        self._armed = [*self._armed, *(_arm(fault) for fault in parsed)]

    def clear(self) -> None:
        self._armed = []

    @property
    def faults(self) -> list[Fault]:
        return [armed.fault for armed in self._armed]

    def __bool__(self) -> bool:
        return bool(self._armed)

    def needs_rpc_method(self, method: str, path: str) -> bool:
        return any(
            armed.fault.target.rpc_method is not None and _matches(armed.fault, method, path)
            for armed in self._armed
            if not armed.fault.device_level
        )

    def fired(self, method: str, path: str, rpc_method: str | None = None) -> list[Fault]:
        """The request's faults that fire now, in the order given (each one counts it)."""
        fired = []
        for armed in self._armed:
            fault = armed.fault
            if fault.device_level or not _matches(fault, method, path):
                continue
            wanted = fault.target.rpc_method
            # restart.cgi is a reboot whatever its body; the JSON-RPC CGIs say so in theirs.
            if wanted is not None and rpc_method != wanted and not path.endswith("/restart.cgi"):
                continue
            if armed.fires():
                fired.append(fault)
        return fired

    def reboot(self) -> RebootFaults:
        """What the device-level reboot faults make of this reboot (each counts it)."""
        downtime: float | None = None
        keep = False
        for armed in self._armed:
            if not armed.fault.device_level or not armed.fires():
                continue
            if armed.fault.action == "hang":
                downtime = float("inf")
            elif armed.fault.action == "downtime" and downtime != float("inf"):
                assert isinstance(armed.fault.value, float)
                downtime = armed.fault.value
            elif armed.fault.action == "keep-bootid":
                keep = True
        return RebootFaults(downtime, keep)


def _arm(fault: Fault) -> _Armed:
    return _Armed(fault, rng=random.Random(fault.when.seed))


def _matches(fault: Fault, method: str, path: str) -> bool:
    target = fault.target
    if target.methods is not None and method not in target.methods:
        return False
    return any(fnmatchcase(path, glob) for glob in target.globs)
