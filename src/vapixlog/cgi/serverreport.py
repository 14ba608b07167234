"""`GET|POST /axis-cgi/serverreport.cgi?mode=<mode>`: the server report (administrators).

`mode` is taken from the query string; a POST may instead send it in an
`application/x-www-form-urlencoded` body (at most 4 KiB), which then wins over the query.
An absent or empty mode means `text`. An unknown mode is 400, another method 405.

Modes
-----
`text` (default), `text/plain; charset=utf-8`. A header block of `Key: value` lines, one
empty line, then the tail of the current boot's system log::

    Server report: vapixlog
    Hostname: axis-accc8e31c70d
    Serial number: ACCC8E31C70D
    Firmware: vapixlog 0.1.0
    Image sensor: none (zip_with_image holds no image)
    Time: 2026-11-25T19:32:11.043+00:00
    Uptime: 1234.567 s
    Boot id: 3f2a9c0e8d7b4f1e9a6b5c4d3e2f1a0b
    Persistent logging: on
    Persistent logging paused: no
    Persistent log size: 1048576 bytes
    Persistent log files: 1
    Persistent log max size: 67108864 bytes
    Persistent log file size: 8388608 bytes
    Persistent log keep free: 33554432 bytes
    Volatile log size: 20480 bytes
    Volatile log max size: 4194304 bytes
    Volatile log dropped lines: 0

    ----- System log: the last 200 lines of the current boot -----
    2026-11-25T19:32:11.043+00:00 axis-accc8e31c70d [ NOTICE  ] vapixlog[3612]: ...

The keys, their order and their units are stable; new keys may be added before the empty
line. Clients should parse only the header block (up to the first empty line): a log line
never starts with a key, but it may contain one. `Boot id:` changes at every start of the
device, so comparing it tells whether the device rebooted. Sizes are in bytes, `Uptime` in
seconds, `Time` is ISO 8601 with the UTC offset, yes/no and on/off are lower case.

`tar_all`, `application/x-tar`, an attachment `serverreport_<hostname>_<YYYYmmddTHHMMSS>.tar`:
an uncompressed POSIX (ustar/pax) tar with a `Content-Length`, streamed in constant memory
(see `vapixlog.cgi.archive`). Members, in this order::

    serverreport_cgi.txt                    the `text` report, first so it is read early
    var/log/messages                        the current boot's volatile log (snapshot)
    var/log/persistent/messages-000001.log  every persistent log file, oldest first
    var/log/recovered/<name>                damaged tails set aside at start-up, if any

Audit entries are lines of the same system log (tag `audit`); there is no separate file.

`zip`, `application/zip`, `serverreport_<hostname>_<YYYYmmddTHHMMSS>.zip`: the same members,
deflated, built in a worker thread into a temporary file (at most 8 MiB of it in memory),
then sent with a `Content-Length`. `zip_with_image` is identical: this device has no image
sensor, so there is no `serverreport_image.jpg` (the report says so).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.cgi.archive import (
    REPORT_MEMBER,
    VOLATILE_MEMBER,
    ArchivePlan,
    Member,
    TarStream,
    build_zip,
    file_chunks,
    lines_size,
    open_log_files,
    recovered_dir_of,
)
from vapixlog.device import Device

MODES = ("text", "tar_all", "zip", "zip_with_image")
ALLOWED_METHODS = "GET, POST"
# The route hands every standard method to the endpoint, which answers 405 with
# `Allow: GET, POST` itself (Starlette's own 405 would also allow HEAD).
ROUTE_METHODS = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
MAX_FORM_BYTES = 4 << 10
TAIL_LINES = 200
FORM_TYPE = "application/x-www-form-urlencoded"
_NO_STORE = {"Cache-Control": "no-store"}


def _text(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def report_text(device: Device, now: datetime.datetime) -> str:
    """The `text` report (see the module doc). Runs on the event loop thread."""
    syslog = device.syslog
    limits = syslog.limits
    volatile = syslog.volatile
    identity = device.identity

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    fields = [
        ("Server report", "vapixlog"),
        ("Hostname", identity.hostname),
        ("Serial number", identity.serial),
        ("Firmware", device.firmware),
        ("Image sensor", "none (zip_with_image holds no image)"),
        ("Time", now.isoformat(timespec="milliseconds")),
        ("Uptime", f"{device.uptime():.3f} s"),
        ("Boot id", device.boot_id),
        ("Persistent logging", "on" if syslog.persistent_enabled else "off"),
        ("Persistent logging paused", yes(syslog.journal.paused)),
        ("Persistent log size", f"{syslog.journal.size_bytes()} bytes"),
        ("Persistent log files", str(len(syslog.journal.files()))),
        ("Persistent log max size", f"{limits.persistent_max_bytes} bytes"),
        ("Persistent log file size", f"{limits.persistent_file_bytes} bytes"),
        ("Persistent log keep free", f"{limits.keep_free_bytes} bytes"),
        ("Volatile log size", f"{volatile.size_bytes} bytes"),
        ("Volatile log max size", f"{limits.volatile_bytes} bytes"),
        ("Volatile log dropped lines", str(volatile.dropped)),
    ]
    head = "".join(f"{key}: {value}\n" for key, value in fields)
    tail = volatile.tail(TAIL_LINES)
    title = f"----- System log: the last {TAIL_LINES} lines of the current boot -----\n"
    return head + "\n" + title + "".join(f"{line}\n" for line in tail)


def _filename(device: Device, now: datetime.datetime, ext: str) -> str:
    host = re.sub(r"[^A-Za-z0-9._-]", "_", device.identity.hostname)
    return f"serverreport_{host}_{now.strftime('%Y%m%dT%H%M%S')}.{ext}"


async def _mode(request: Request) -> str | Response:
    """The requested mode, or an error response for a bad request."""
    mode = request.query_params.get("mode", "")
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
            return _text(f"Request body too large: at most {MAX_FORM_BYTES} bytes", 413)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return _text(f"Request body too large: at most {MAX_FORM_BYTES} bytes", 413)
        if body:
            ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if ctype != FORM_TYPE:
                return _text(f"Unsupported media type: send {FORM_TYPE}", 415)
            try:
                form = urllib.parse.parse_qsl(
                    body.decode("utf-8"), keep_blank_values=True, max_num_fields=64
                )
            except (UnicodeDecodeError, ValueError) as error:
                return _text(f"Malformed form body: {error}", 400)
            for key, value in form:
                if key == "mode":
                    mode = value
    mode = mode or "text"
    if mode not in MODES:
        shown = mode if len(mode) <= 40 else mode[:40] + "..."
        return _text(f"Unknown mode {shown!r}; valid modes: {', '.join(MODES)}", 400)
    return mode


class _ArchiveResponse(StreamingResponse):
    """A streaming response whose body iterator is closed however the response ends.

    On a client disconnect the ASGI server may cancel the send while the generator is
    suspended at a `yield`; closing it here runs its `finally` (which closes the files)
    at once instead of whenever the generator is garbage collected.
    """

    def __init__(self, body: AsyncIterator[bytes], length: int, headers: dict[str, str]):
        super().__init__(body, headers={**headers, "Content-Length": str(length)})
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


async def _plan(device: Device, report: bytes, now: datetime.datetime) -> ArchivePlan:
    """The members of an archive; the files are opened (and sized) in a worker thread."""
    syslog = device.syslog
    stamp = int(now.timestamp())
    lines = syslog.volatile.lines()  # a snapshot: the ring is touched on this thread only
    plan = ArchivePlan(
        [
            Member(REPORT_MEMBER, len(report), stamp, data=report),
            Member(VOLATILE_MEMBER, lines_size(lines), stamp, lines=lines),
        ]
    )
    persistent = syslog.journal.files()
    recovered = recovered_dir_of(syslog.persistent_dir)
    try:
        await anyio.to_thread.run_sync(open_log_files, persistent, recovered, plan)
    except BaseException:
        plan.close()
        raise
    return plan


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    async def serverreport(request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _text(
                f"Method not allowed: use {ALLOWED_METHODS}", 405, {"Allow": ALLOWED_METHODS}
            )
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        mode = await _mode(request)
        if isinstance(mode, Response):
            return mode

        now = datetime.datetime.now().astimezone()
        report = report_text(device, now)
        if mode == "text":
            return PlainTextResponse(report, headers=_NO_STORE)

        plan = await _plan(device, report.encode("utf-8", "surrogatepass"), now)
        if mode == "tar_all":
            try:
                tar = TarStream(plan)
            except BaseException:
                plan.close()
                raise
            return _ArchiveResponse(
                tar.chunks(),
                tar.length,
                {
                    **_NO_STORE,
                    "Content-Type": "application/x-tar",
                    "Content-Disposition": (
                        f'attachment; filename="{_filename(device, now, "tar")}"'
                    ),
                },
            )

        spool: IO[bytes]
        try:
            spool = await anyio.to_thread.run_sync(build_zip, plan)
        finally:
            plan.close()
        try:
            length = await anyio.to_thread.run_sync(_remaining, spool)
        except BaseException:
            with contextlib.suppress(OSError):
                spool.close()
            raise
        return _ArchiveResponse(
            file_chunks(spool),
            length,
            {
                **_NO_STORE,
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{_filename(device, now, "zip")}"',
            },
        )

    return serverreport


def _remaining(file: IO[bytes]) -> int:
    """Bytes from the current position of `file` to its end; the position is kept."""
    here = file.tell()
    end = file.seek(0, 2)
    file.seek(here)
    return end - here
