"""Typed exceptions of the client: one class per kind of failure, all `VapixError`s."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx
import orjson


class VapixError(Exception):
    """Any failure of a device call.

    Attributes: `status` (HTTP status, None when no answer came), `code` (the DCA error code
    or the JSON-RPC error code, when the device gave one), `message` (the device's message
    or a description of the failure) and `url` (the request's URL, when known).

    >>> try:
    ...     client.set_persistent(True)
    ... except PermissionDeniedError as exc:
    ...     print(exc.status, exc.code, exc.message)
    403 4 Permission denied: ...
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.url = url

    def __str__(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code is not None:
            details.append(f"code {self.code}")
        return f"{self.message} ({', '.join(details)})" if details else self.message


class AuthenticationError(VapixError):
    """401: no credentials, wrong credentials, or a scheme the device does not offer."""


class PermissionDeniedError(VapixError):
    """403: the user is known but its role may not do this (DCA code 4)."""


class AddressBlockedError(VapixError):
    """403 from the device's brute-force protection: too many failed logins came from this
    client's address (20 in a second by default), so every request from it is refused for a
    while (10 s by default). Check the password, wait, then retry."""


class NotFoundError(VapixError):
    """404: no such API, version, entity, property, action or CGI (DCA code 1)."""


class NoLogApiError(NotFoundError):
    """The device has no Log API at all: not in discovery, not at the known paths. AXIS OS
    10.x and 11.7 and older have no Device Configuration APIs (DECISIONS 12); a capture on
    such a device changes nothing and reports outcome `no-log-api`, not a failure."""


class DuplicateDeviceError(VapixError):
    """The device is already in this fleet capture under another address (a host name and
    its IP address, say): the same serial. It is captured once, under the first."""


class ValidationError(VapixError):
    """400: the device refused the request's data (DCA code 5) or its form (code 6)."""


class MethodNotAllowedError(VapixError):
    """405: the resource does not take this HTTP method, even as legacy PUT (DCA code 2)."""


class RateLimitedError(VapixError):
    """429: too many calls (DCA code 9); `retry_after` is the device's hint in seconds."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, url=url)
        self.retry_after = retry_after


class DeviceUnavailableError(VapixError):
    """No usable answer: connection refused or reset, a timeout, or 503 (rebooting, busy)."""


class ServerError(VapixError):
    """The device failed with a 5xx status other than 503 (DCA code 100: internal error)."""


class TlsError(VapixError):
    """The HTTPS connection could not be trusted (certificate verification failed)."""


class CertificatePinError(TlsError):
    """The device's certificate does not have the pinned SHA-256 fingerprint.

    Raised right after the TLS handshake, before any HTTP request (let alone credentials)
    is sent on the connection.
    """


class RpcError(VapixError):
    """A JSON-RPC CGI (`firmwaremanagement.cgi`) answered with an `error` object.

    `code` is the JSON-RPC error code (400 bad request, 405 unknown method, 417 unsupported
    API version, 423 busy, 500 internal); `method` the called method.
    """

    def __init__(
        self, message: str, *, method: str, code: int | None = None, url: str | None = None
    ) -> None:
        super().__init__(message, status=200, code=code, url=url)
        self.method = method


class UnexpectedResponseError(VapixError):
    """The device answered something this client does not understand (not the API shape)."""


class ArchiveError(VapixError):
    """A downloaded report is not a complete archive (a truncated or corrupt tar): it is
    never kept as a file. `message` says where the structure broke."""


RpcErrorFactory = Callable[[str, dict[str, Any], str], Exception]


def rpc_error(method: str, error: dict[str, Any], url: str) -> Exception:
    """The exception for a JSON-RPC CGI's `error` object (HTTP 200)."""
    code = error.get("code")
    return RpcError(
        f"{method}: {error.get('message') or 'failed'}",
        method=method,
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        url=url,
    )


def error_from_response(response: httpx.Response) -> VapixError:
    """The typed exception for an HTTP error response (body already read)."""
    status = response.status_code
    url = str(response.request.url)
    code: int | None = None
    message = ""
    try:
        body = orjson.loads(response.content)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            code = error.get("code") if isinstance(error.get("code"), int) else None
            message = str(error.get("message") or "")
    except orjson.JSONDecodeError:
        text = response.content[:300].decode("utf-8", "replace").strip()
        message = text.splitlines()[0] if text else ""
        if message.startswith("<") or "html" in response.headers.get("content-type", ""):
            # A web page, not a VAPIX answer: say so rather than quote `<!DOCTYPE HTML>`.
            message = (
                f"{url} answered with a web page, not a VAPIX answer (not an Axis device, "
                "or a path this device does not have)"
            )
    message = message or f"{response.reason_phrase or 'error'} from {url}"
    if status == 429:
        return RateLimitedError(
            message, retry_after=_retry_after(response), status=status, code=code, url=url
        )
    if status == 403 and response.headers.get("content-type", "").startswith("text/html"):
        return AddressBlockedError(
            f"{url}: this address is blocked by the device's brute-force protection after "
            "too many failed logins; check the password and retry in a few seconds",
            status=status,
            url=url,
        )
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else VapixError)
    return kind(message, status=status, code=code, url=url)


_BY_STATUS: dict[int, type[VapixError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    503: DeviceUnavailableError,
}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def error_from_transport(exc: httpx.TransportError, url: str) -> VapixError:
    """The typed exception for a failure below HTTP (connection, TLS, timeout, reset)."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return TlsError(f"{url}: certificate not trusted: {cause.verify_message}", url=url)
        if isinstance(cause, ssl.SSLError):
            if cause.reason == "WRONG_VERSION_NUMBER":
                return TlsError(
                    f"{url}: this port answers plain HTTP, not HTTPS (TLS: {cause.reason})",
                    url=url,
                )
            return TlsError(f"{url}: TLS failed: {cause.reason or cause}", url=url)
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectTimeout):
        what = "connection timed out"
    elif isinstance(exc, httpx.TimeoutException):
        what = "no answer in time"
    elif isinstance(exc, httpx.ConnectError):
        what = _connect_reason(exc)
    elif isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        what = "connection lost"
        if url.startswith("http://") and "without sending" in str(exc):
            what = (
                "the connection was closed without an answer (if this port serves HTTPS, "
                "use an https:// URL)"
            )
    else:
        what = str(exc) or type(exc).__name__
    return DeviceUnavailableError(f"{url}: {what}", url=url)


def _connect_reason(exc: httpx.ConnectError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect: {cause.strerror.lower()}"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {exc}" if str(exc) else "cannot connect"
