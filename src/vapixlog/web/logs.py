"""The device's log page: `/` and `/logs`, its live feed and its status.

Routes (all behind the service's Basic/Digest authentication):

``GET /``, ``GET /logs``
    The page (any role). Plain HTML, CSS and JavaScript shipped in `static/`, no build
    step, nothing loaded from another origin (the edge's Content-Security-Policy says so too).
``GET /logs/static/<file>``
    Its script and style sheet.
``GET /logs/status``
    JSON for the page (any role): the user and role, what the role may do (`may`), the
    device's identity and boot id, its clock (`time`, ISO 8601 with the UTC offset its log
    lines carry), the persistent log's state (`enabled`, `paused` by the
    keep-free floor), size and cap, the volatile log's, and the number of live readers.
    For admins also `remote_syslog`: `remotesyslog.cgi`'s `status` data, each server with
    its `health` (`sent`, `dropped`, `problem`; null while forwarding is off). The page's
    remote syslog card (admins only, DECISIONS 13) changes the settings through
    `remotesyslog.cgi` itself.
    The page reads and sets the persistent-logging switch through the Log API itself
    (`/config/rest/log/v1/persistent/enabled`), and clears and writes through it too.
``GET /logs/events``
    Server-sent events (admin only, as `systemlog.cgi`): the current boot's log, then every
    new entry as it enters the volatile log. Events:

    - ``snapshot``: ``{"boot_id", "hostname", "lines": [...], "total", "evicted"}``, first,
      the newest lines of the boot (at most `SNAPSHOT_LINES` and `SNAPSHOT_CHARS`). It is
      taken in the same step as the subscription, so no line is missed or doubled between
      it and the live lines. Every (re)connection starts with one: it replaces the view.
    - ``message`` (the default event): a JSON array of new lines, oldest first; an integer
      in it is a gap: that many lines were skipped because this client read too slowly.
    - ``end``: ``{"reason": "shutdown" | "reboot"}``, then the stream closes; the device
      is going down (reconnect later; the new boot starts with a new snapshot).
    - a ``: heartbeat`` comment every `HEARTBEAT` seconds, so proxies and clients see a
      live connection.

The device ends every stream (``end``) as soon as a shutdown or reboot begins
(`SystemLog.end_subscriptions`, called by the server), since the server waits for open
responses before it stops the device.

Each subscriber has a bounded queue (`QUEUE_LINES` lines, `QUEUE_CHARS` characters): a
writer only appends to it (O(1), never waits), and a client that does not keep up loses
lines, counted in a gap marker, rather than slowing writers down or growing memory. At most
`MAX_FOLLOWERS` streams are served per device (503 beyond). Lines are sent in batches, at
most one every `BATCH_INTERVAL` seconds, which keeps 1000+ entries per second cheap for both
ends.

Who sees what: the log itself is admin-only on the page, as `systemlog.cgi` and the server
report are on the device (a system log can hold user names, addresses and what other
services print). Viewers and operators get the page with the persistent-logging switch
shown read-only and an overview of what their role may see (the device, persistent logging,
storage use), with what needs the admin role (the log, remote syslog, the audit log) named
as such rather than fetched. Admins also get an audit log card: the page reads the last
entries from `auditlog.cgi?tail=N` itself (AXIS OS 12.5+; hidden where it answers 404).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.device import Device
from vapixlog.syslog.line import format_timestamp

STATIC = Path(__file__).with_name("static")
SNAPSHOT_LINES = 5000
SNAPSHOT_CHARS = 2 << 20
QUEUE_LINES = 5000
QUEUE_CHARS = 1 << 20
MAX_FOLLOWERS = 32
HEARTBEAT = 15.0
BATCH_INTERVAL = 0.05
RETRY_MS = 2000

_NO_STORE = {"Cache-Control": "no-store"}  # the edge adds the CSP and other page headers


class Follower:
    """One live reader's bounded queue of new lines (a `LogSubscriber`).

    Filled on the event loop thread by every write, drained by the reader's stream. When
    the queue is full, new lines are counted instead of kept; the count goes into the queue
    as one integer (a gap marker) before the next line that fits.
    """

    def __init__(self, max_lines: int = QUEUE_LINES, max_chars: int = QUEUE_CHARS) -> None:
        self.max_lines = max_lines
        self.max_chars = max_chars
        self._queue: deque[str | int] = deque()
        self._lines = 0
        self._chars = 0
        self._skipped = 0  # lines dropped since the last marker
        self.skipped_total = 0
        self.ended: str | None = None
        self._ready = asyncio.Event()

    def line(self, line: str) -> None:
        if self._lines >= self.max_lines or self._chars + len(line) > self.max_chars:
            self._skipped += 1
            self.skipped_total += 1
        else:
            if self._skipped:
                self._queue.append(self._skipped)
                self._skipped = 0
            self._queue.append(line)
            self._lines += 1
            self._chars += len(line)
        self._ready.set()

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._ready.set()

    async def wait(self, timeout: float) -> bool:
        """Wait until there is something to take (True) or `timeout` passed (False)."""
        if not self._ready.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    def take(self) -> list[str | int]:
        """Everything queued, oldest first, with a trailing gap marker if lines were lost."""
        items = list(self._queue)
        self._queue.clear()
        self._lines = self._chars = 0
        if self._skipped:
            items.append(self._skipped)
            self._skipped = 0
        self._ready.clear()
        return items


def _snapshot(device: Device) -> dict[str, Any]:
    volatile = device.syslog.volatile
    lines = volatile.tail(SNAPSHOT_LINES)
    chars, start = 0, len(lines)
    while start > 0 and chars + len(lines[start - 1]) <= SNAPSHOT_CHARS:
        start -= 1
        chars += len(lines[start])
    return {
        "boot_id": device.boot_id,
        "hostname": device.identity.hostname,
        "lines": lines[start:],
        "total": len(volatile),  # lines of this boot still in memory
        "evicted": volatile.dropped,  # older lines of this boot no longer in memory
    }


def _remote_syslog(device: Device) -> dict[str, Any]:
    """The remote syslog panel's data (admins only): the settings as `status` answers
    them, each server with its `health` (sent, dropped, problem) while it forwards, else
    null."""
    remote = device.remote_syslog
    settings = remote.settings.to_json()
    health = remote.health()
    for index, server in enumerate(settings["servers"]):
        found = health[index] if index < len(health) else None
        if found is not None and found["server"] == server:
            server["health"] = {k: found[k] for k in ("sent", "dropped", "problem")}
        else:
            server["health"] = None
    return settings


def _event(name: str | None, data: object) -> bytes:
    head = b"" if name is None else b"event: " + name.encode() + b"\n"
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


async def _stream(follower: Follower, first: bytes) -> AsyncIterator[bytes]:
    yield first
    loop = asyncio.get_running_loop()
    last_sent = 0.0
    while True:
        if not await follower.wait(HEARTBEAT):
            yield b": heartbeat\n\n"
            continue
        # Coalesce: at most one batch per BATCH_INTERVAL, however fast lines arrive.
        delay = last_sent + BATCH_INTERVAL - loop.time()
        if delay > 0 and follower.ended is None:
            await asyncio.sleep(delay)
        items = follower.take()
        chunk = _event(None, items) if items else b""
        if follower.ended is not None:
            yield chunk + _event("end", {"reason": follower.ended})
            return
        last_sent = loop.time()
        yield chunk


class _EventStream(StreamingResponse):
    """Server-sent events that unsubscribe however the response ends (also on disconnect)."""

    def __init__(self, device: Device, follower: Follower, first: bytes) -> None:
        headers = {**_NO_STORE, "X-Accel-Buffering": "no"}
        super().__init__(_stream(follower, first), media_type="text/event-stream", headers=headers)
        self._device = device
        self._follower = follower

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._device.syslog.unsubscribe(self._follower)
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _log_api(device: Device) -> dict[str, Any] | None:
    profile = device.config.profile
    if not profile.dca:
        return None
    root = f"/config/rest/log/{profile.log_api_versions[0]}"
    return {"root": root, "put_only": profile.legacy_put_only}


def routes(device: Device) -> list[BaseRoute]:
    """The page's routes for `device` (the app adds them next to the others)."""

    async def page(request: Request) -> Response:
        user = require(request, Role.VIEWER)
        if isinstance(user, Response):
            return user
        return FileResponse(STATIC / "logs.html", headers=_NO_STORE)

    async def status(request: Request) -> Response:
        user = require(request, Role.VIEWER)
        if isinstance(user, Response):
            return user
        syslog = device.syslog
        limits = syslog.limits
        admin = user.role.implies(Role.ADMIN)
        log_api = _log_api(device)
        data = {
            "user": user.name,
            "role": str(user.role),
            "may": {
                "read_log": admin,
                "set_persistent": admin and log_api is not None,
                "clear": admin and log_api is not None,
                "write": admin and log_api is not None,
                "remote_syslog": admin,
            },
            "hostname": device.identity.hostname,
            "serial": device.identity.serial,
            "firmware": device.firmware,
            "axis_os": device.firmware_version,
            # Where the page's script calls the Log API, and with which methods; None on
            # firmware without one (AXIS OS 10.x).
            "log_api": log_api,
            "boot_id": device.boot_id,
            # The device's clock with its UTC offset, as its log lines carry it.
            "time": format_timestamp(datetime.now().astimezone()),
            "uptime": round(device.uptime(), 3),
            "live_readers": syslog.subscriber_count,
            "persistent": {
                "enabled": syslog.persistent_enabled,
                "paused": syslog.journal.paused,
                "size": syslog.journal.size_bytes(),
                "cap": limits.persistent_max_bytes,
                "file_size": limits.persistent_file_bytes,
                "keep_free": limits.keep_free_bytes,
            },
            "volatile": {
                "size": syslog.volatile.size_bytes,
                "cap": limits.volatile_bytes,
                "lines": len(syslog.volatile),
                "evicted": syslog.volatile.dropped,
            },
        }
        if admin:
            data["remote_syslog"] = _remote_syslog(device)
        return Response(orjson.dumps(data), media_type="application/json", headers=_NO_STORE)

    async def events(request: Request) -> Response:
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        syslog = device.syslog
        if syslog.subscriber_count >= MAX_FOLLOWERS:
            return PlainTextResponse(
                f"Too many live log readers (at most {MAX_FOLLOWERS}); try again later\n",
                status_code=503,
                headers={"Retry-After": "10"},
            )
        follower = Follower()
        # The snapshot and the subscription in one step of the event loop: no gap, no double.
        first = f"retry: {RETRY_MS}\n\n".encode() + _event("snapshot", _snapshot(device))
        syslog.subscribe(follower)
        return _EventStream(device, follower, first)

    return [
        Route("/", page, methods=["GET"]),
        Route("/logs", page, methods=["GET"]),
        Route("/logs/status", status, methods=["GET"]),
        Route("/logs/events", events, methods=["GET"]),
        Mount("/logs/static", StaticFiles(directory=STATIC), name="logs-static"),
    ]
