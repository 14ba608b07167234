"""`GET|POST /axis-cgi/serverreport.cgi?mode=<mode>`: the server report (administrators).

As AXIS OS serves it, where a client can see it (facts and sources: the project's
`spec/server-report.md`; every row in `docs/fidelity.md`). `mode` is taken from the query
string; a POST may instead send it in an `application/x-www-form-urlencoded` body (at most
4 KiB), which then wins over the query. An absent or empty mode means `text`.

Delivery
--------
Every mode answers `200` at once, headers first (`Cache-Control: no-store`), then the body
in HTTP/1.1 chunked transfer, without a `Content-Length`, as a device streams it. With
`serve --report-delay SECONDS` the body starts only after that long (devices take about
30 s), so clients can be tested against slow reports; a reboot or shutdown of the device
ends the wait early. The report is taken when its body starts: the persistent journal is
flushed, the volatile log is copied, the persistent files are opened and sized (entries
written later are not in it). Memory stays bounded whatever the size of the logs.

Download names (`Content-Disposition: attachment`), the device's local time of the request:
`Axis_SR_<YYYYmmdd>_<HHMMSS>_<serial>.zip` for `zip` and `zip_with_image`, the same name
ending in `.tar` for `tar_all` and `tar_kernel_log`; `text` has none.

Modes
-----
`text` (default), `text/plain; charset=utf-8`: the report in the device's layout, with only
the sections vapixlog can fill honestly, in the device's order (no kernel log: vapixlog runs
no kernel; no parameter list: the device has no parameters). LF line
ends; the serial is upper-case hex::

    <empty line>
    ----- Server Report Start -----

    Product: vapixlog 0.1.0 emulated device
    Serial No: ACCC8E31C70D

    ----- /usr/share/axis-release/variables -----

    RELEASE="12.11.77"
    PART="vapixlog"

    ----- uptime -----

     19:32:11 up  2:49,  0 users,  load average: 0.52, 0.36, 0.29

    ----- Lifetime Statistics -----

    Boot-up Counter: 12
    Restart Counter: 9

    ----- System log -----

    <every entry of the current boot's volatile log, oldest first>

    ----- Persistent system log -----

    <the persistent log files joined, oldest first>

    ----- Access log -----

    <the access log (accesslog.cgi's entries), oldest first>

    ----- Server Report End -----

`RELEASE` is the AXIS OS version the device claims (`DeviceConfig.firmware_version`), `PART`
its firmware part (as `firmwaremanagement.cgi` `status`). The uptime line has the form of the
`uptime` command (the load average is the host's). The boot-up counter counts every start,
the restart counter every requested reboot (`lifetime.json` in the state dir). Real reports
have no boot id: use `systemready.cgi` for that.

`zip` and `zip_with_image`, `application/zip`: `serverreport_cgi.txt` (the text report),
and for `zip_with_image` also `serverreport_image.jpg`, a 640x360 JPEG test card with the
hostname, the serial and the time (vapixlog has no image sensor; `vapixlog.cgi.testcard`).
Deflated, streamed with data descriptors.

`tar_all`, `application/x-tar`: the files of `/var/log` under their device names, POSIX
(ustar/pax), uncompressed::

    var/log/messages          every entry of the current boot (the volatile log)
    var/log/info.log          the entries of INFO and every more severe level
    var/log/warning.log       WARNING and more severe
    var/log/error.log         ERR and more severe
    var/log/critical.log      CRIT and more severe
    var/log/persist-all.log   the persistent log files joined, oldest first; present when
                              the persistent log is not empty

Audit entries are lines of the same system log (tag `audit`). Damaged tails set aside at
start-up (`<state>/log/recovered/`) are not in any report.

`tar_kernel_log`, `application/x-tar`: one member, `kernel.log`, empty (no kernel).

Errors
------
Text bodies `Error: <what>.` (`text/plain; charset=utf-8`), never a 500 for bad input:
`400 Error: unsupported mode "<mode>".` (the mode shown escaped, at most 64 characters),
`400` for a malformed form body, `413` for a form body over 4 KiB, `415` for a POST body
that is not a form, `405` with `Allow: GET, POST` for every other method (HEAD too: a
report is slow and has no cheaper head). `401`/`403` for who may not (admin only).
"""

from __future__ import annotations

import contextlib
import datetime
import re
import urllib.parse
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from vapixlog.auth.users import Role
from vapixlog.cgi import require
from vapixlog.cgi.archive import TarStream, text_chunks, zip_chunks
from vapixlog.cgi.reportcontent import plan_report
from vapixlog.device import Device
from vapixlog.syslog.line import escape

MODES = ("text", "zip", "zip_with_image", "tar_all", "tar_kernel_log")
ALLOWED_METHODS = "GET, POST"
# The route hands every standard method to the endpoint, which answers 405 with
# `Allow: GET, POST` itself (Starlette's own 405 would also allow HEAD).
ROUTE_METHODS = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
MAX_FORM_BYTES = 4 << 10
MAX_SHOWN_MODE = 64
FORM_TYPE = "application/x-www-form-urlencoded"
_DELAY_POLL = 0.25  # how often a delayed report checks whether the device is going down
_CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "zip": "application/zip",
    "zip_with_image": "application/zip",
    "tar_all": "application/x-tar",
    "tar_kernel_log": "application/x-tar",
}
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(f"Error: {message}.\n", status_code=status, headers=headers)


def download_name(serial: str, now: datetime.datetime, mode: str) -> str | None:
    """`Axis_SR_<YYYYmmdd>_<HHMMSS>_<serial>.zip|.tar`; None for `text`."""
    if mode == "text":
        return None
    ext = "zip" if mode.startswith("zip") else "tar"
    return f"Axis_SR_{now:%Y%m%d_%H%M%S}_{_UNSAFE_NAME.sub('_', serial)}.{ext}"


def _shown(mode: str) -> str:
    shown = escape(mode[:MAX_SHOWN_MODE]).replace('"', "\\x22")
    return shown + ("..." if len(mode) > MAX_SHOWN_MODE else "")


async def _form_mode(request: Request) -> str | Response | None:
    """`mode` from a POST's form body (None: not in it), or an error response."""
    too_large = _error(f"request body too large: at most {MAX_FORM_BYTES} bytes", 413)
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES):
        return too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return too_large
    if not body:
        return None
    ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if ctype != FORM_TYPE:
        return _error(f"unsupported media type: send {FORM_TYPE}", 415)
    try:
        form = urllib.parse.parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=64
        )
    except (UnicodeDecodeError, ValueError):
        return _error("malformed form body", 400)
    modes = [value for key, value in form if key == "mode"]
    return modes[-1] if modes else None


async def _mode(request: Request) -> str | Response:
    """The requested mode, or an error response for a bad request."""
    mode = request.query_params.get("mode", "")
    if request.method == "POST":
        from_form = await _form_mode(request)
        if isinstance(from_form, Response):
            return from_form
        if from_form is not None:
            mode = from_form
    mode = mode or "text"
    if mode not in MODES:
        return _error(f'unsupported mode "{_shown(mode)}"', 400)
    return mode


class _ReportResponse(StreamingResponse):
    """A chunked streaming response whose body is closed however the response ends.

    On a client disconnect the ASGI server may cancel the send while the generator is
    suspended at a `yield`; closing it here runs its `finally` (which closes the files)
    at once instead of whenever the generator is garbage collected.
    """

    def __init__(self, body: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        super().__init__(body, headers=headers)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


async def _wait(device: Device, seconds: float) -> None:
    """The artificial delay; it ends early when the device goes down (a reboot then does
    not wait for it)."""
    deadline = anyio.current_time() + seconds
    while (left := deadline - anyio.current_time()) > 0:
        if device.unavailable_reason() is not None:
            return
        await anyio.sleep(min(left, _DELAY_POLL))


async def _body(device: Device, mode: str) -> AsyncGenerator[bytes, None]:
    await _wait(device, device.config.report_delay)
    plan = await plan_report(device, mode)
    try:
        if mode == "text":
            chunks = text_chunks(plan)
        elif mode.startswith("zip"):
            chunks = zip_chunks(plan)
        else:
            chunks = TarStream(plan).chunks()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                yield chunk
    finally:
        plan.close()


def endpoint(device: Device) -> Callable[[Request], Awaitable[Response]]:
    async def serverreport(request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            return _error(
                f"method not allowed: use {ALLOWED_METHODS}", 405, {"Allow": ALLOWED_METHODS}
            )
        user = require(request, Role.ADMIN)
        if isinstance(user, Response):
            return user
        mode = await _mode(request)
        if isinstance(mode, Response):
            return mode
        now = datetime.datetime.now().astimezone()
        headers = {"Cache-Control": "no-store", "Content-Type": _CONTENT_TYPES[mode]}
        if name := download_name(device.identity.serial, now, mode):
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return _ReportResponse(_body(device, mode), headers)

    return serverreport
