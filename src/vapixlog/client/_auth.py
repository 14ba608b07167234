"""Authentication chosen from the device's challenge, and HTTPS trust (CA file, pin, insecure).

`NegotiateAuth` sends the first request without credentials, reads the `WWW-Authenticate`
challenges of the 401 and answers with Digest when offered (the math is `httpx.DigestAuth`'s),
else Basic. The choice is kept, so later requests authenticate at once.

`PinningTransport` checks the SHA-256 fingerprint of the peer certificate right after each TLS
handshake, before a single byte of HTTP (let alone credentials) goes over the connection.
"""

from __future__ import annotations

import functools
import hashlib
import re
import ssl
import typing
from collections.abc import Generator, Iterable
from pathlib import Path

import httpcore
import httpx

from vapixlog.client._errors import CertificatePinError

_HEX = re.compile(r"[0-9a-f]{64}")
_REALM = re.compile(r'realm="([^"]*)"', re.IGNORECASE)


class NegotiateAuth(httpx.Auth):
    """Basic or Digest, whichever the device's 401 challenge offers (Digest preferred)."""

    def __init__(self, username: str, password: str) -> None:
        self._digest = httpx.DigestAuth(username, password)
        self._basic = httpx.BasicAuth(username, password)
        self._chosen: httpx.Auth | None = None
        self.realm: str | None = None  # of the device's first challenge

    @property
    def scheme(self) -> str | None:
        """`"digest"` or `"basic"` once negotiated, None before."""
        if self._chosen is None:
            return None
        return "digest" if self._chosen is self._digest else "basic"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._chosen is not None:
            yield from self._chosen.auth_flow(request)
            return
        response = yield request  # no credentials: learn the schemes from the challenge
        if response.status_code != 401:
            return
        raw = response.headers.get_list("www-authenticate")
        realms = (_REALM.search(c) for c in raw)
        self.realm = next((m[1] for m in realms if m is not None), None)
        challenges = [c.lower() for c in raw]
        if any(c.startswith("digest ") for c in challenges):
            self._chosen = self._digest
        elif any(c.startswith("basic") for c in challenges):
            self._chosen = self._basic
        else:
            return  # a scheme we do not speak: the 401 stands
        if self._chosen is self._basic:
            yield from self._basic.auth_flow(request)
            return
        # Hand the challenge to DigestAuth's own flow: with no challenge yet it first yields
        # the request unchanged (the one just answered), then the authenticated one.
        flow = self._digest.auth_flow(request)
        next(flow)
        try:
            request = flow.send(response)
            while True:
                response = yield request
                request = flow.send(response)
        except StopIteration:
            return


def normalize_pin(pin: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits; accepts `AA:BB:..` and `aabb..`."""
    digits = re.sub(r"[\s:]", "", pin).lower()
    if not _HEX.fullmatch(digits):
        raise ValueError(
            f"invalid SHA-256 fingerprint {pin!r}: give 64 hex digits, with or without colons"
        )
    return digits


@functools.lru_cache(maxsize=32)
def ssl_context(ca_file: str | None, *, verify: bool) -> ssl.SSLContext:
    """A client context, shared between clients (building one costs milliseconds).

    `verify=False` is for `insecure=True` and for pinning without a CA file (the pin is then
    the trust decision).
    """
    if not verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_file is not None:
        return ssl.create_default_context(cafile=ca_file)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def ca_path(ca_file: str | Path | None) -> str | None:
    if ca_file is None:
        return None
    path = Path(ca_file)
    if not path.is_file():
        raise ValueError(f"CA file {str(path)!r} does not exist")
    return str(path.resolve())


class _PinnedStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, pin: str) -> None:
        self._inner = inner
        self._pin = pin

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = stream.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        actual = hashlib.sha256(der).hexdigest() if der else None
        if actual != self._pin:
            await stream.aclose()
            shown = bytes.fromhex(actual).hex(":").upper() if actual else "none"
            raise CertificatePinError(
                f"{server_hostname}: certificate fingerprint {shown} is not the pinned one"
            )
        return stream

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _PinningBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, pin: str) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pin = pin

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _PinnedStream(stream, self._pin)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinningTransport(httpx.AsyncHTTPTransport):
    """httpx's transport, with every TLS connection checked against a pinned fingerprint."""

    def __init__(self, context: ssl.SSLContext, pin: str, limits: httpx.Limits) -> None:
        super().__init__(verify=context, limits=limits)
        # httpx does not take a network backend; its pool is rebuilt with one that pins.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinningBackend(pin),
        )
