"""The HTTP access log of one boot: bounded, in memory, lost at reboot (as the volatile log).

Entries are the device's `httpd` lines (server-report.md §4, AXIS OS 10.4+):

    <time> <host> [ NOTICE  ] httpd[<pid>]: <u> from <ip> <path> <METHOD> <status>
    <time> <host> [ NOTICE  ] httpd[<pid>]: <u> from <ip> failed to access <path>.Password mismatch

Successes are kept only when the device's access logging is on (`serve --access-log on`,
`System.AccessLog=On` on a device; off by default); failed logins always. A user name the
device does not know is never written as sent: it becomes `<unknown user>` (DECISIONS 20).

Recording sits on every request's path, so it only appends a small tuple to a bounded
deque (no formatting, no I/O); lines are formatted when the log is read. Used from the
event loop thread only.
"""

from __future__ import annotations

import datetime
import os
import time
from collections import deque

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vapixlog.severity import Severity
from vapixlog.syslog.line import format_line

TAG = "httpd"
DEFAULT_MAX_ENTRIES = 10_000
MAX_PATH = 512  # longer paths are cut (with "...") so that every entry stays small
UNKNOWN_USER = "<unknown user>"
ANONYMOUS = "<anonymous>"  # paths served without a login (systemready, apidiscovery)


def _path(path: str) -> str:
    return path if len(path) <= MAX_PATH else path[:MAX_PATH] + "..."


class AccessLog:
    """At most `max_entries` entries, the oldest evicted first (`dropped` counts them)."""

    def __init__(
        self, *, hostname: str, successes: bool, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.hostname = hostname
        self.successes = successes
        self.pid = os.getpid()
        self.max_entries = max_entries
        self._entries: deque[tuple[float, str]] = deque(maxlen=max_entries)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _add(self, message: str) -> None:
        if len(self._entries) == self.max_entries:
            self.dropped += 1
        self._entries.append((time.time(), message))

    def success(self, user: str, client: str, path: str, method: str, status: int) -> None:
        """A request by an authenticated (or anonymous) client; kept only when on."""
        if self.successes:
            self._add(f"{user} from {client} {_path(path)} {method} {status}")

    def failure(self, user: str | None, known: bool, client: str, path: str) -> None:
        """A failed login; `known`: the user name exists (else it is not written)."""
        name = user if known and user else UNKNOWN_USER
        self._add(f"{name} from {client} failed to access {_path(path)}.Password mismatch")

    def records(self) -> list[tuple[float, str]]:
        """A copy of the entries (time, message), oldest first, for `format_records`."""
        return list(self._entries)

    def lines(self) -> list[str]:
        """The entries as log lines, oldest first."""
        return self.format_records(self.records())

    def format_records(self, records: list[tuple[float, str]]) -> list[str]:
        """`records` as log lines (touches no state: may run on another thread)."""
        zone: datetime.tzinfo | None = None
        out = []
        for stamp, message in records:
            if zone is None:
                zone = datetime.datetime.fromtimestamp(stamp).astimezone().tzinfo
            when = datetime.datetime.fromtimestamp(stamp, zone)
            out.append(format_line(when, self.hostname, Severity.NOTICE, TAG, self.pid, message))
        return out


class AccessLogMiddleware:
    """Pure ASGI: records every HTTP request that reached the app behind authentication
    (who, from where, which path and method, the status sent) when its response starts."""

    def __init__(self, app: ASGIApp, log: AccessLog, *, user_key: str) -> None:
        self.app = app
        self.log = log
        self.user_key = user_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                user = scope.get(self.user_key)
                client = scope.get("client")
                self.log.success(
                    getattr(user, "name", ANONYMOUS),
                    str(client[0]) if client else "unknown",
                    scope.get("path", ""),
                    scope.get("method", "GET"),
                    int(message["status"]),
                )
            await send(message)

        await self.app(scope, receive, recording_send)
