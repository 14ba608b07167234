"""Connections to one remote syslog server: a UDP socket, or a TCP stream with or without TLS.

A `Link` sends already framed messages. UDP never waits: a datagram the kernel cannot take
now is lost (and counted). A stream link writes into the transport, whose buffer is capped
(`WRITE_BUFFER`), as is the kernel's (`SOCKET_BUFFER`): `drain` waits while the server reads
slowly, and the sender's bounded queue drops meanwhile, so a receiver that stops reading
cannot grow the service's memory.

TLS (RFC 5425): the server's certificate must chain to the CA of `serve --remote-syslog-ca`
(kept in the state dir), or to the system's trust store when none was given, and must name
the configured address (an IP address SAN for an IP literal); TLS 1.2 or newer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from pathlib import Path

from vapixlog.forward.config import Protocol, Server

CONNECT_TIMEOUT = 5.0
WRITE_BUFFER = 64 << 10
# The kernel's send buffer would otherwise grow (autotuning) to megabytes for a receiver
# that does not read; this is plenty for a syslog stream on a LAN.
SOCKET_BUFFER = 256 << 10


class ConnectionLostError(ConnectionError):
    """The server closed the connection (or sent something a syslog server never sends)."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that validates the server; `ca_file` None: the system's CAs."""
    context = ssl.create_default_context(
        cafile=str(ca_file) if ca_file is not None and ca_file.exists() else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def check_ca_file(path: Path) -> None:
    """Raise ValueError unless `path` holds at least one PEM certificate to trust."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"cannot read CA certificates from {path}: {error}") from None
    if not context.get_ca_certs():
        raise ValueError(f"{path} holds no CA certificate")


def describe(error: BaseException) -> str:
    """A short reason for a log line."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: the server's certificate is not trusted ({error.verify_message})"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed ({error.reason or error})"
    if isinstance(error, TimeoutError):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the address ({error.strerror})"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionLostError):
        return "the server closed the connection"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error) or type(error).__name__


class DatagramLink:
    """A connected, non-blocking UDP socket (RFC 5426: one message per datagram)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.lost = False  # UDP has no connection to lose

    def send(self, datagram: bytes) -> None:
        """Raises BlockingIOError when the kernel buffer is full, OSError (e.g. refused,
        from an earlier ICMP error) otherwise; either way this datagram is not sent."""
        self._sock.send(datagram)

    def close(self) -> None:
        self._sock.close()


class StreamLink:
    """A TCP or TLS connection; watches for the server closing it while idle."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wake: asyncio.Event
    ) -> None:
        self._writer = writer
        writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)
        self.lost = False
        self._watch = asyncio.create_task(self._watch_eof(reader, wake))

    async def _watch_eof(self, reader: asyncio.StreamReader, wake: asyncio.Event) -> None:
        # A syslog server sends nothing: data or EOF both end the connection, which tells a
        # stopped server at once instead of at the second write after it.
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read(1)
        self.lost = True
        wake.set()

    async def send(self, data: bytes) -> None:
        if self.lost:
            raise ConnectionLostError
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._watch.cancel()
        self._writer.close()  # TLS: close_notify when possible; never waits


Link = DatagramLink | StreamLink


async def connect(server: Server, wake: asyncio.Event, tls: ssl.SSLContext | None) -> Link:
    """Open a link to `server` (`tls`: the context for protocol TLS); raises OSError,
    ssl.SSLError or TimeoutError."""
    loop = asyncio.get_running_loop()
    if server.protocol is Protocol.UDP:
        infos = await loop.getaddrinfo(server.address, server.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.connect(address)  # UDP: no packet is sent; send() needs no address
        except OSError:
            sock.close()
            raise
        return DatagramLink(sock)
    context = tls if server.protocol is Protocol.TLS else None
    async with asyncio.timeout(CONNECT_TIMEOUT):
        reader, writer = await asyncio.open_connection(
            server.address,
            server.port,
            ssl=context,
            server_hostname=server.address if context is not None else None,
            ssl_handshake_timeout=CONNECT_TIMEOUT if context is not None else None,
        )
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        # Notice a server that vanished without closing the connection.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return StreamLink(reader, writer, wake)
