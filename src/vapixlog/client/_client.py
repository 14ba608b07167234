"""`AsyncClient`: the implementation of every call of the client."""

from __future__ import annotations

import asyncio
import os
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import httpx
import orjson

from vapixlog.client._auth import (
    NegotiateAuth,
    PinningTransport,
    ca_path,
    normalize_pin,
    ssl_context,
)
from vapixlog.client._boot import SYSTEMREADY_CGI, BootState
from vapixlog.client._capture import CaptureResult, Stage, capture_boot_logs
from vapixlog.client._errors import (
    AddressBlockedError,
    DeviceUnavailableError,
    MethodNotAllowedError,
    NoLogApiError,
    NotFoundError,
    RpcError,
    RpcErrorFactory,
    UnexpectedResponseError,
    VapixError,
    error_from_response,
    error_from_transport,
    rpc_error,
)
from vapixlog.client._remote_syslog import RemoteSyslogCalls
from vapixlog.severity import Severity

FIRMWARE_CGI = "/axis-cgi/firmwaremanagement.cgi"
SERVERREPORT_CGI = "/axis-cgi/serverreport.cgi"
SYSTEMLOG_CGI = "/axis-cgi/systemlog.cgi"
AUDITLOG_CGI = "/axis-cgi/auditlog.cgi"
DISCOVERY = "/config/discover"
FALLBACK_PATHS = ("/config/rest/log/v1", "/config/rest/log/v1alpha")
_CHUNK = 64 << 10
_SERIAL_REALM = re.compile(r"AXIS_([0-9A-Fa-f]{12})")
_ANONYMOUS = httpx.Auth()  # sends the request as it is: no credentials
_NO_BODY: Any = object()
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """`host[:port]` or `scheme://host[:port][/]` as `scheme://host[:port]` (http by default)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid device URL {url!r}; use e.g. https://192.168.0.90")
    try:
        parts.port  # noqa: B018 (raises for a port out of range or not a number)
    except ValueError:
        raise ValueError(
            f"invalid device URL {url!r}: the port must be a number from 1 to 65535"
        ) from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


class AsyncClient(RemoteSyslogCalls):
    """An asynchronous client for the Log API of one device (an Axis device or
    `vapixlog serve`).

    Authentication is Digest or Basic, whichever the device's challenge offers (Digest
    preferred). For HTTPS, trust the device's certificate with `ca_file=` (a PEM file),
    pin it with `pin_sha256=` (its SHA-256 fingerprint, `AA:BB:...` or plain hex; checked
    on every connection before anything is sent), or switch checks off with
    `insecure=True`. The Log API is found through discovery (`/config/discover`), else at
    `/config/rest/log/v1` or `/config/rest/log/v1alpha`; devices that answer PATCH or POST
    with 405 (AXIS OS 11.10 and older) get PUT. Failures raise `VapixError` subclasses.

    >>> async with AsyncClient("http://127.0.0.1:8080", user="root", password="pw") as c:
    ...     await c.write_message("hello", Severity.NOTICE)
    ...     result = await c.capture_boot_logs("captures/")
    ...     print(result.path, result.bytes)
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        ca_file: str | Path | None = None,
        pin_sha256: str | None = None,
        insecure: bool = False,
        timeout: float = 30.0,
        report_timeout: float = 300.0,
    ) -> None:
        self.url = normalize_url(url)
        if insecure and (ca_file is not None or pin_sha256 is not None):
            raise ValueError("insecure=True cannot be combined with ca_file or pin_sha256")
        cafile = ca_path(ca_file)
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=4)
        transport: httpx.AsyncBaseTransport
        if pin_sha256 is not None:
            context = ssl_context(cafile, verify=cafile is not None)
            transport = PinningTransport(context, normalize_pin(pin_sha256), limits)
        else:
            context = ssl_context(cafile, verify=not insecure)
            transport = httpx.AsyncHTTPTransport(verify=context, limits=limits)
        auth = NegotiateAuth(user, password or "") if user is not None else None
        self._auth = auth
        self._timeout = timeout
        self._report_timeout = report_timeout
        self._http = httpx.AsyncClient(
            auth=auth,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "vapixlog-client"},
            trust_env=False,
        )
        self._log_api: str | None = None
        self._discovery_lock = asyncio.Lock()
        self._use_put = False
        self._api_versions: dict[str, str] = {}  # JSON-RPC CGI -> the version to call

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    @property
    def auth_scheme(self) -> str | None:
        """`"digest"` or `"basic"` once the device's challenge chose it, else None."""
        return self._auth.scheme if self._auth else None

    @property
    def serial(self) -> str | None:
        """The device's serial number, from its login realm (`AXIS_<serial>`), known after
        the first request that needed a login; None before, or for another realm."""
        realm = self._auth.realm if self._auth else None
        match = _SERIAL_REALM.fullmatch(realm or "")
        return match[1].upper() if match else None

    # ----- transport -----

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        """One request; raises the typed error for a failure or an HTTP error status."""
        try:
            response = await self._http.request(
                method,
                url,
                content=None if json is None else orjson.dumps(json),
                headers={"Content-Type": "application/json"} if json is not None else None,
                params=params,
                timeout=timeout if timeout is not None else self._timeout,
            )
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        if response.is_error:
            raise error_from_response(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UnexpectedResponseError(
                f"{response.request.url}: the answer is not JSON",
                status=response.status_code,
                url=str(response.request.url),
            ) from None

    # ----- the Log API (DCA) -----

    async def log_api_url(self) -> str:
        """The Log API's root URL: discovery's `rest_api` of `apis.log.v1`, else the first
        of `/config/rest/log/v1` and `/config/rest/log/v1alpha` that exists. Cached."""
        async with self._discovery_lock:
            if self._log_api is None:
                self._log_api = await self._discover()
            return self._log_api

    async def _discover(self) -> str:
        try:
            document = self._json(await self._send("GET", self.url + DISCOVERY))
            entry = document.get("apis", {}).get("log", {}).get("v1", {})
            rest_api = entry.get("rest_api") if isinstance(entry, dict) else None
            if isinstance(rest_api, str) and rest_api.startswith("/"):
                return self.url + rest_api
        except (NotFoundError, UnexpectedResponseError, AttributeError):
            pass  # no discovery (older firmware) or no log API in it: try the known paths
        for path in FALLBACK_PATHS:
            try:
                await self._send("GET", self.url + path)
                return self.url + path
            except NotFoundError:
                continue
        if not await self._answers_vapix():  # a 404 everywhere: no Axis device at all
            raise NotFoundError(
                f"{self.url}: not an Axis device (no Log API and no VAPIX answer at "
                f"{SYSTEMREADY_CGI})",
                status=404,
                url=self.url,
            )
        raise NoLogApiError(
            f"{self.url}: the device has no Log API (not in discovery, "
            f"nor at {' or '.join(FALLBACK_PATHS)})",
            status=404,
            url=self.url,
        )

    async def _answers_vapix(self) -> bool:
        """Whether `systemready.cgi` answers as on every AXIS OS since 9.50 (AXIS OS 10.x
        has no Log API, yet is an Axis device)."""
        try:
            return await self.system_ready() is not None
        except VapixError:
            return False

    async def _dca(self, method: str, path: str, data: Any = _NO_BODY) -> dict[str, Any]:
        """A DCA call below the Log API root; the success envelope."""
        url = await self.log_api_url() + path
        body = None if data is _NO_BODY else {"data": data}
        legacy = method in ("PATCH", "POST")
        try:
            response = await self._send(
                "PUT" if legacy and self._use_put else method, url, json=body
            )
        except MethodNotAllowedError:
            if not legacy or self._use_put:
                raise
            response = await self._send("PUT", url, json=body)  # AXIS OS 11.10 and older
            self._use_put = True
        envelope = self._json(response)
        if not isinstance(envelope, dict) or envelope.get("status") != "success":
            raise UnexpectedResponseError(f"{url}: not a DCA success envelope", url=url)
        return envelope

    async def write_message(self, msg: str, severity: Severity | int = Severity.INFO) -> list[str]:
        """Write `msg` (one line, at most 4096 characters) into the device's system log.

        Returns the device's `warnings` (empty unless, say, the persistent storage is full).

        >>> await client.write_message("test run 42 starts", Severity.NOTICE)
        []
        """
        envelope = await self._dca("POST", "/writeMessage", {"msg": msg, "severity": int(severity)})
        return [str(w) for w in envelope.get("warnings") or []]

    async def persistent_enabled(self) -> bool:
        """Whether the device saves its logs to the persistent storage."""
        data = (await self._dca("GET", "/persistent/enabled")).get("data")
        if not isinstance(data, bool):
            raise UnexpectedResponseError(f"{self.url}: persistent.enabled is not a boolean")
        return data

    async def set_persistent(self, enabled: bool) -> None:
        """Turn saving logs to the persistent storage on or off (admin)."""
        await self._dca("PATCH", "/persistent/enabled", bool(enabled))

    async def clear_persistent_log(self) -> None:
        """Delete the persistent log files to free the storage (admin)."""
        await self._dca("POST", "/persistent/clearLog", {})

    # ----- CGIs -----

    async def server_report(
        self, mode: str = "tar_all", dest: str | os.PathLike[str] | IO[bytes] | None = None
    ) -> int:
        """Download `serverreport.cgi?mode=MODE` into `dest` (a path or a binary file),
        streamed, never held in memory; returns the number of bytes written.

        A path is written as `<path>.part` and renamed when complete, so it never holds a
        partial report. Modes: `tar_all` (every log file), `text`, `zip`, `zip_with_image`,
        `tar_kernel_log`.

        >>> await client.server_report("tar_all", "report.tar")
        1228800
        """
        if dest is None:
            raise TypeError("server_report needs dest: a path or a binary file object")
        url = self.url + SERVERREPORT_CGI
        timeout = httpx.Timeout(self._timeout, read=self._report_timeout)
        if isinstance(dest, str | os.PathLike):
            path = Path(dest)
            part = path.with_name(path.name + ".part")
            try:
                with part.open("wb") as file:
                    written = await self._stream_to(url, mode, file, timeout)
                part.replace(path)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            return written
        return await self._stream_to(url, mode, dest, timeout)

    async def _stream_to(self, url: str, mode: str, file: IO[bytes], timeout: httpx.Timeout) -> int:
        written = 0
        try:
            async with self._http.stream(
                "GET", url, params={"mode": mode}, timeout=timeout
            ) as response:
                if response.is_error:
                    await response.aread()
                    raise error_from_response(response)
                async for chunk in response.aiter_bytes(_CHUNK):
                    file.write(chunk)
                    written += len(chunk)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        return written

    async def report_text(self) -> str:
        """The `text` server report."""
        response = await self._send("GET", self.url + SERVERREPORT_CGI, params={"mode": "text"})
        return response.text

    async def system_ready(self) -> BootState | None:
        """What `systemready.cgi` says (no login needed): ready or not, and from API version
        1.4 the boot id and uptime. None when the device has no such CGI (older than AXIS OS
        9.50) or its answer holds no state."""
        reply = await self._system_ready_reply()
        return BootState.from_reply(reply) if reply is not None else None

    async def _boot_state(self) -> BootState | None:
        """`system_ready`, but an `error` answer (a device that cannot tell right now, as
        while it starts) raises `DeviceUnavailableError`, to be retried or waited out,
        instead of passing for a device without systemready."""
        reply = await self._system_ready_reply()
        if isinstance(reply, dict) and isinstance(error := reply.get("error"), dict):
            message = f"{error.get('message') or 'error'} (code {error.get('code')})"
            raise DeviceUnavailableError(f"{self.url}{SYSTEMREADY_CGI}: {message}", url=self.url)
        return BootState.from_reply(reply) if reply is not None else None

    async def _system_ready_reply(self) -> Any:
        """systemready.cgi's JSON answer (no login needed); None when there is no such CGI."""
        url = self.url + SYSTEMREADY_CGI
        body = {"apiVersion": "1.0", "context": "vapixlog", "method": "systemready"}
        try:
            response = await self._http.post(url, json=body, auth=_ANONYMOUS)
        except httpx.TransportError as exc:
            raise error_from_transport(exc, self.url) from exc
        if response.status_code == 404:
            return None
        if response.is_error:
            raise error_from_response(response)
        return self._json(response)

    async def boot_id(self) -> str | None:
        """The id of the device's current boot (systemready's `bootid`); None when the
        device does not tell (systemready 1.2, or none at all)."""
        state = await self.system_ready()
        return state.boot_id if state else None

    async def system_log(self) -> str:
        """The current boot's system log (`systemlog.cgi`), one entry a line."""
        return (await self._send("GET", self.url + SYSTEMLOG_CGI)).text

    async def audit_log(self, tail: int | None = None) -> str:
        """The audit log (`auditlog.cgi`, AXIS OS 12.5 and later; admin), one entry a line,
        oldest first; the newest `tail` entries only with a tail. Older firmware has none:
        `NotFoundError`."""
        params = {"tail": str(tail)} if tail is not None else None
        return (await self._send("GET", self.url + AUDITLOG_CGI, params=params)).text

    async def _rpc(
        self,
        cgi: str,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        error: RpcErrorFactory = rpc_error,
    ) -> dict[str, Any]:
        """One call to the JSON-RPC CGI at path `cgi`, at the highest 1.x version it offers
        (`getSupportedVersions` itself takes none); its `data`. An `error` answer raises
        what `error(method, error_object, url)` makes of it."""
        body: dict[str, Any] = {"context": "vapixlog", "method": method}
        if method != "getSupportedVersions":
            body["apiVersion"] = await self._rpc_version(cgi, error)
        if params is not None:
            body["params"] = params
        url = self.url + cgi
        reply = self._json(await self._send("POST", url, json=body))
        if not isinstance(reply, dict):
            raise UnexpectedResponseError(f"{url}: the answer is not a JSON object", url=url)
        if isinstance(failure := reply.get("error"), dict):
            raise error(method, failure, url)
        data = reply.get("data")
        if reply.get("method", method) != method or not isinstance(data, dict):
            raise UnexpectedResponseError(f"{url}: unexpected answer to {method}", url=url)
        return data

    async def _rpc_version(self, cgi: str, error: RpcErrorFactory) -> str:
        """The highest 1.x API version the CGI offers; asked once per client."""
        if (known := self._api_versions.get(cgi)) is not None:
            return known
        versions = (await self._rpc(cgi, "getSupportedVersions", error=error)).get("apiVersions")
        ones = [v for v in versions or [] if isinstance(v, str) and re.fullmatch(r"1\.\d+", v)]
        if not ones:
            offered = ", ".join(map(str, versions)) if isinstance(versions, list) else ""
            raise RpcError(
                f"{cgi.rsplit('/', 1)[-1]} offers API versions {offered or 'none'}; this "
                "client speaks 1.x only",
                method="getSupportedVersions",
                url=self.url + cgi,
            )
        version = max(ones, key=lambda v: tuple(int(p) for p in v.split(".")))
        self._api_versions[cgi] = version
        return version

    async def request_reboot(self) -> None:
        """Ask for a reboot (`firmwaremanagement.cgi`, the highest 1.x API version)."""
        await self._rpc(FIRMWARE_CGI, "reboot")

    async def reboot(self, *, wait: bool = True, timeout: float = 300.0) -> str | None:
        """Reboot the device through `firmwaremanagement.cgi` (admin).

        With `wait`, return once the device answers again with a new boot id (that id;
        None if its report shows none, then coming back after being unreachable counts);
        raises `DeviceUnavailableError` if that takes longer than `timeout` seconds.

        >>> await client.reboot(wait=True, timeout=120)
        '6f1c2a90-3b7e-4d55-9a0e-21c4be7d0f11'
        """
        before = await self.system_ready() if wait else None
        await self.request_reboot()
        if not wait:
            return None
        return await self.wait_for_new_boot(before, timeout)

    async def wait_for_new_boot(self, before: BootState | None, timeout: float) -> str | None:
        """Poll systemready until the device is ready in a boot after `before` (see
        `vapixlog.client._boot`); the new boot id (None when the device tells none)."""
        deadline = time.monotonic() + timeout
        went_down = False
        interval = 0.2
        while True:
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 1.0)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceUnavailableError(
                    f"{self.url}: did not come back with a new boot within {timeout:g} s",
                    url=self.url,
                )
            try:  # an error answer (a device still starting) raises too
                state = await asyncio.wait_for(self._boot_state(), max(remaining, 0.5))
            except (DeviceUnavailableError, TimeoutError):
                went_down = True
                continue
            except AddressBlockedError:  # the block clears by itself: wait it out
                continue
            if state is not None and not state.ready:
                # Going down: what tells a reboot on systemready 1.2 (no bootid), even
                # when the address refuses connections too briefly to be seen.
                went_down = True
                continue
            told = state.rebooted_since(before) if state and before else None
            has_ids = (
                state is not None
                and before is not None
                and None
                not in (
                    state.boot_id,
                    before.boot_id,
                )
            )
            if told or (not has_ids and went_down):
                return state.boot_id if state else None

    async def capture_boot_logs(
        self,
        dest: str | os.PathLike[str] | IO[bytes],
        *,
        timeout: float = 300.0,
        on_stage: Callable[[Stage], None] | None = None,
    ) -> CaptureResult:
        """Capture the logs of a reboot: see `vapixlog.client._capture.capture_boot_logs`.

        >>> result = await client.capture_boot_logs("captures/")
        >>> result.path, result.bytes, round(result.seconds)
        (PosixPath('captures/127.0.0.1_8080_ACCC8E31C70D.tar'), 40960, 3)
        """
        return await capture_boot_logs(self, dest, timeout=timeout, on_stage=on_stage)
