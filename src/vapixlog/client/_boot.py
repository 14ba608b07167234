"""Telling that a device rebooted, the way real devices allow it: `systemready.cgi`.

`systemready.cgi` needs no login and answers at once. From API version 1.4 its reply has a
`bootid` (a UUID, new on every boot) and an `uptime` (whole seconds); 1.2 has neither, and
devices older than AXIS OS 9.50 have no such CGI (404). So a reboot is recognised by, in
order: a new `bootid`; an `uptime` smaller than the old one plus the time since it was read
(it restarted from zero); and, failing both, the device going unreachable and coming back.
A server report is never read for this: on a device it takes about 30 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

SYSTEMREADY_CGI = "/axis-cgi/systemready.cgi"
_UPTIME_SLACK = 2.0  # seconds: uptime is whole seconds, and reading it takes time


@dataclass(frozen=True)
class BootState:
    """What `systemready.cgi` said, and when (`time.monotonic()`)."""

    ready: bool
    boot_id: str | None = None  # from API version 1.4
    uptime: float | None = None  # from API version 1.4
    api_version: str | None = None
    read_at: float = field(default_factory=time.monotonic)

    @classmethod
    def from_reply(cls, reply: Any) -> BootState | None:
        """The state in a systemready reply, or None when it holds none (an error answer)."""
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, dict):
            return None
        boot_id, uptime = data.get("bootid"), data.get("uptime")
        version = reply.get("apiVersion")
        return cls(
            ready=data.get("systemready") == "yes",
            boot_id=boot_id if isinstance(boot_id, str) and boot_id else None,
            uptime=_seconds(uptime),
            api_version=version if isinstance(version, str) else None,
        )

    def rebooted_since(self, before: BootState) -> bool | None:
        """Whether this state is of a later boot than `before`; None: cannot tell."""
        if self.boot_id is not None and before.boot_id is not None:
            return self.boot_id != before.boot_id
        if self.uptime is not None and before.uptime is not None:
            expected = before.uptime + (self.read_at - before.read_at)
            return self.uptime < expected - _UPTIME_SLACK
        return None


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None
