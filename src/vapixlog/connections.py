"""The connections of one device server: a cap per client address, and idle ones shed.

Why: uvicorn's `limit_concurrency` (`--max-connections`) answers 503 to every request once
that many connections are open, whoever holds them, and a silent connection lasts until the
request timeout (10 s). About 1000 idle sockets from one address thus locked everybody out,
the admin included, 10 s at a time. `ConnectionTable` adds two rules:

* One client address (the socket's peer IP) holds at most `per_address` connections at once
  (default 512, at most three quarters of `max_connections`); `admit` refuses one more.
* Near the total limit (above 90 % of `max_connections`), a new connection sheds *waiting*
  ones, oldest first, enough to get back to 90 %: connections that have been waiting for
  `grace` seconds (1 s) without a complete request (silent since they opened or since their
  last response, or trickling a request). Connections whose complete request is being
  answered (a long download, a live log stream) are never shed.

It is a synchronous table with an injectable monotonic clock, unit tested with a fake clock;
`vapixlog.protocol` applies it (one table per server instance, never a process global).
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Clock = Callable[[], float]
C = TypeVar("C", bound=Hashable)

PER_ADDRESS = 512  # enough for a management system with many workers behind one address
SHED_ABOVE_PERCENT = 90  # of max_connections: above it, waiting connections are shed
IDLE_GRACE = 1.0  # seconds a connection may wait for its request before it can be shed
SUMMARY_EVERY = 10.0  # seconds between two warnings about refused or shed connections


def default_per_address(max_connections: int) -> int:
    """512, but at most three quarters of `max_connections`: one address never fills a small
    device alone."""
    return max(1, min(PER_ADDRESS, max_connections * 3 // 4))


class ConnectionTable(Generic[C]):
    """The open connections of one server, by client address and by how long they wait."""

    def __init__(
        self,
        max_connections: int,
        per_address: int | None = None,
        *,
        grace: float = IDLE_GRACE,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_connections < 1 or (per_address is not None and per_address < 1):
            raise ValueError("connection limits must be at least 1")
        if not grace > 0:
            raise ValueError("the idle grace period must be positive")
        self.max_connections = max_connections
        self.per_address = per_address or default_per_address(max_connections)
        self.shed_above = max_connections * SHED_ABOVE_PERCENT // 100
        self.grace = grace
        self._clock = clock
        self._address: dict[C, str | None] = {}  # every admitted connection
        self._count: Counter[str] = Counter()  # admitted connections per address
        self._waiting: OrderedDict[C, float] = OrderedDict()  # since when; oldest first
        self._refused: Counter[str] = Counter()  # since the last summary
        self._shed = 0
        self._next_summary = -math.inf

    def __len__(self) -> int:
        return len(self._address)

    def count(self, address: str) -> int:
        return self._count[address]

    def admit(self, conn: C, address: str | None) -> bool:
        """Count a new connection (waiting for its request); False: its address is at its cap
        (it is not counted). `address` None (no IP: a Unix socket) has no cap."""
        if address is not None:
            if self._count[address] >= self.per_address:
                self._refused[address] += 1
                return False
            self._count[address] += 1
        self._address[conn] = address
        self._waiting[conn] = self._clock()
        return True

    def release(self, conn: C) -> None:
        """The connection is closed (or no longer ours); a second call does nothing."""
        if conn not in self._address:
            return
        address = self._address.pop(conn)
        self._waiting.pop(conn, None)
        if address is not None:
            self._count[address] -= 1
            if not self._count[address]:
                del self._count[address]

    def busy(self, conn: C) -> None:
        """A complete request of the connection is being answered: it is not shed."""
        self._waiting.pop(conn, None)

    def waiting(self, conn: C) -> None:
        """The connection waits for its next request, from now on."""
        if conn in self._address:
            self._waiting.pop(conn, None)
            self._waiting[conn] = self._clock()  # the clock is monotonic: order kept

    def shed(self) -> list[C]:
        """The connections to close now, released already: the oldest waiting for `grace`
        seconds or more, as many as needed to get back to `shed_above` (when above)."""
        victims: list[C] = []
        oldest = self._clock() - self.grace
        while len(self._address) > self.shed_above and self._waiting:
            conn, since = next(iter(self._waiting.items()))
            if since > oldest:
                break
            self.release(conn)
            victims.append(conn)
        self._shed += len(victims)
        return victims

    def summary(self) -> str | None:
        """What was refused and shed since the last summary, at most every SUMMARY_EVERY
        seconds (a flood gets one warning per period, not one per connection)."""
        now = self._clock()
        if not (self._refused or self._shed) or now < self._next_summary:
            return None
        self._next_summary = now + SUMMARY_EVERY
        parts = []
        if self._refused:
            top = ", ".join(f"{n} from {a}" for a, n in self._refused.most_common(3))
            more = " and more" if len(self._refused) > 3 else ""
            parts.append(f"refused connections over {self.per_address} per address: {top}{more}")
        if self._shed:
            parts.append(
                f"closed {self._shed} idle connections near the limit of {self.max_connections}"
            )
        self._refused.clear()
        self._shed = 0
        return "; ".join(parts)
