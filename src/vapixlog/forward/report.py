"""What goes wrong with one remote syslog server, told in the system log, rate-limited.

`status` keeps the API's shape (DECISIONS 13), so drops and connection or TLS failures show
as WARNING lines in the device's own log: the first at once, then at most one per
`interval` per server, each summing up what happened since the one before (new failure
reason, messages dropped). When forwarding works again after a failure, one line says so.

Lines are always written from a scheduled callback, never from inside the call that reports
the event: events happen inside log writes (a drop is counted while an entry is appended),
and writing a line there would recurse into the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vapixlog.severity import Severity

INTERVAL = 5.0
LogLine = Callable[[Severity, str], None]


class Reporter:
    def __init__(self, name: str, log: LogLine, *, interval: float = INTERVAL) -> None:
        self.name = name  # "server 1 (TCP 192.0.2.10:514)"
        self._log = log
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._last = -interval  # loop time of the last line
        self._timer: asyncio.TimerHandle | None = None
        self._problem: str | None = None
        self._told_down = False  # a problem line went out since the last recovery
        self._recovered = False
        self._drops = 0
        self._closed = False
        self.total_dropped = 0

    @property
    def problem(self) -> str | None:
        return self._problem

    def dropped(self, count: int = 1) -> None:
        self._drops += count
        self.total_dropped += count
        self._schedule()

    def failed(self, reason: str) -> None:
        if reason != self._problem:
            self._problem = reason
            self._schedule()

    def working(self) -> None:
        if self._problem is not None:
            self._problem, self._recovered = None, True
            self._schedule()

    def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        if self._timer is None and not self._closed:
            delay = max(0.0, self._last + self._interval - self._loop.time())
            self._timer = self._loop.call_later(delay, self._emit)

    def _emit(self) -> None:
        self._timer = None
        drops = f"{self._drops} message{'s' if self._drops != 1 else ''} dropped"
        recovered, self._recovered = self._recovered, False
        told_down, self._told_down = self._told_down, self._problem is not None
        if self._problem is not None:
            text = f"{self._problem}; {drops}" if self._drops else self._problem
            severity = Severity.WARNING
        elif self._drops and recovered:
            text, severity = f"forwarding again; {drops} while it failed", Severity.WARNING
        elif self._drops:
            text, severity = f"{drops}: the server does not keep up", Severity.WARNING
        elif recovered and told_down:
            text, severity = "forwarding again", Severity.NOTICE
        else:
            return  # a failure that ended before it was told, and cost nothing
        self._drops = 0
        self._last = self._loop.time()
        self._log(severity, f"remote syslog {self.name}: {text}")
