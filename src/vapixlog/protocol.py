"""The HTTP/1.1 protocol of the server: uvicorn's httptools protocol plus a request timeout.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but has no limit on how
long a request may take to *arrive*: a client that trickles its headers or its body one byte
at a time (slowloris) holds its connection, and a task, for ever. `RequestTimeoutProtocol`
adds one timer per request: the whole request, its headers and its body, must arrive within
`request_timeout` seconds, counted from the first byte of the request (for the first request
of a connection: from the connection's opening, so a silent connection is closed too). The
timer stops when the request is complete; the time the application takes to answer does not
count. On expiry the connection is closed; when only part of the headers came, a `408 Request
Timeout` goes out first (as Apache's mod_reqtimeout does), unless an earlier response of the
connection is still under way. Over TLS the timer starts once the handshake is done; the
handshake itself has the event loop's own limit (60 s).

httptools itself has no limit on the size of the request line and headers (uvicorn's h11
protocol has one): the protocol answers `431` and closes when they pass `MAX_HEADER_BYTES`.

It is the class uvicorn's `Config(http=...)` takes: no uvicorn global is touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_REQUEST_TIMEOUT = 10.0
MAX_HEADER_BYTES = 64 << 10  # request line and headers of one request

_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request Timeout\n"
)
_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Request header fields too large\n"
)


class RequestTimeoutProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within `request_timeout` seconds."""

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_timer: asyncio.TimerHandle | None = None
        self._in_message = False  # between the first byte of a request and its last
        self._headers_pending = False  # the current request's headers are not complete
        self._header_bytes = 0  # size of the current request line and headers
        self._raw_header_bytes = 0  # bytes received while they were incomplete
        self._rejected = False  # answered 431: the rest of the connection is ignored

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._request_timer is None and not self._in_message:
            # These bytes begin a request (or are stray CRLFs between requests, which must
            # not keep a connection open either).
            self._arm()
        super().data_received(data)
        if self._headers_pending and not self.transport.is_closing():
            # All of `data` went into the request line and headers (they are not complete),
            # which httptools accumulates: bound them before they are complete.
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > MAX_HEADER_BYTES:
                self._reject()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = self._headers_pending = True
        self._header_bytes = self._raw_header_bytes = 0
        if self._request_timer is None:  # a pipelined request, already in the buffer
            self._arm()

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._headers_pending = False
        if self._header_bytes > MAX_HEADER_BYTES:  # they came in one piece
            self._reject()
        if not self._rejected:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._rejected:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._disarm()
        if not self._rejected:
            super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the connection now belongs to the websocket protocol
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._request_timer = self.loop.call_later(self.request_timeout, self._on_request_timeout)

    def _disarm(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _on_request_timeout(self) -> None:
        self._request_timer = None
        if self.transport.is_closing():
            return
        if self.pipeline:
            # Reading is paused while an earlier request of this connection is answered:
            # the wait is ours, not the client's.
            self._arm()
            return
        # Part of the headers came: answer 408 (unless an earlier response is under way).
        if self._headers_pending and self._idle():
            self.transport.write(_408)
        self.transport.close()

    def _reject(self) -> None:
        """Refuse the request whose headers are too large, and the connection with it."""
        self._rejected = True
        if self._idle():
            self.transport.write(_431)
        self.transport.close()

    def _idle(self) -> bool:
        """No response of this connection is under way (one could be sent now)."""
        return self.cycle is None or self.cycle.response_complete


def http_protocol(request_timeout: float) -> type[RequestTimeoutProtocol]:
    """The protocol class to pass as `uvicorn.Config(http=...)`."""
    if request_timeout <= 0:
        raise ValueError("request_timeout must be positive")
    return type(
        "RequestTimeoutProtocol", (RequestTimeoutProtocol,), {"request_timeout": request_timeout}
    )
