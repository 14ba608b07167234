"""One request's exchange with the application: uvicorn's response cycle, leaner, and the
transport as the responses see it (`TurnWriter`).

`ResponseCycle` is what `vapixlog.protocol` makes for every request instead of uvicorn's
`RequestResponseCycle` (it is one, so uvicorn's protocol code and `run_asgi` work with it):
the same ASGI behaviour, checks and error messages, for less Python a request. The server
spends about a third of a writeMessage in the HTTP layer, and the differences add up
(docs/benchmarks.md):

- built with positional arguments, no access log (the server never enables uvicorn's);
- response header names and values are checked once per distinct pair (`_CHECKED`), not
  with two regular expressions for every header of every response;
- `receive` does not await an event that is already set, and passes on a body that came
  in one piece as it is (`vapixlog.protocol` appends further pieces in a bytearray).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

from vapixlog.edge.answers import send_answer

# (name, value) pairs already found valid: responses repeat a few (content type, security
# headers, lengths). Cleared when full, so a stream of distinct values (the Date header)
# costs a check each, never memory.
_CHECKED: set[tuple[bytes, bytes]] = set()
_CHECKED_MAX = 4096

PLAIN_TEXT = b"text/plain; charset=utf-8"  # of the answers the server makes itself


class ResponseCycle(RequestResponseCycle):
    """uvicorn's `RequestResponseCycle` with a shorter path through `send` and `receive`."""

    body: bytes | bytearray  # type: ignore[assignment]  # bytes while it is one piece

    def __init__(
        self,
        scope: Any,
        transport: asyncio.Transport,
        flow: FlowControl,
        logger: logging.Logger,
        default_headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        expect_100_continue: bool,
        on_response: Callable[[], None],
    ) -> None:
        # No super().__init__(): the same attributes, set here without its keyword handling.
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.logger = logger
        self.access_logger = logger
        self.access_log = False
        self.default_headers = default_headers
        self.message_event = asyncio.Event()
        self.on_response = on_response
        self.disconnected = False
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = b""  # the protocol's on_body makes it a bytearray when a second piece comes
        self.more_body = True
        self.response_started = False
        self.response_complete = False
        self.chunked_encoding: bool | None = None
        self.expected_content_length = 0

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
                )
            self._start(message["status"], message.get("headers", ()))
            return
        if self.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message '{message['type']}' sent, after response already "
                "completed."
            )
        if message["type"] != "http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
            )
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
        elif self.chunked_encoding:
            content = [b"%x\r\n" % len(body), body, b"\r\n"] if body else []
            if not more_body:
                content.append(b"0\r\n\r\n")
            self.transport.write(b"".join(content))
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            self.transport.write(body)
        if not more_body:
            if self.expected_content_length != 0:
                raise RuntimeError("Response content shorter than Content-Length")
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()

    def _start(self, status: int, headers: Any) -> None:
        self.response_started = True
        self.waiting_for_100_continue = False
        content = [STATUS_LINE[status]]
        has_close = False
        checked = _CHECKED
        for pair in (*self.default_headers, *headers):
            name, value = pair
            try:
                known: bool | None = pair in checked
            except TypeError:  # a list, or bytearrays: fine for ASGI, checked every time
                known = None
            if not known:
                if HEADER_RE.search(name):
                    raise RuntimeError("Invalid HTTP header name.")
                if HEADER_VALUE_RE.search(value):
                    raise RuntimeError("Invalid HTTP header value.")
                if known is False:
                    if len(checked) >= _CHECKED_MAX:
                        checked.clear()
                    checked.add(pair)
            name = name.lower()
            if name == b"content-length":
                if self.chunked_encoding is None:
                    self.expected_content_length = int(value.decode())
                    self.chunked_encoding = False
            elif name == b"transfer-encoding":
                if value.lower() == b"chunked":
                    self.expected_content_length = 0
                    self.chunked_encoding = True
            elif name == b"connection" and b"close" in [
                token.lower().strip() for token in value.split(b",")
            ]:
                self.keep_alive = False
                has_close = True
            content += (name, b": ", value, b"\r\n")
        if not self.keep_alive and not has_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        self.transport.write(b"".join(content))

    async def send_500_response(self) -> None:
        # uvicorn's answer after an unexpected application error, hardened as every answer.
        body = b"Internal Server Error"
        await send_answer(self.send, 500, body, PLAIN_TEXT, [(b"connection", b"close")])

    async def receive(self) -> Any:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.response_complete:
            self.flow.resume_reading()
            event = self.message_event
            if not event.is_set():
                await event.wait()
            event.clear()
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        body = self.body
        self.body = b""
        return {
            "type": "http.request",
            "body": body if type(body) is bytes else bytes(body),
            "more_body": self.more_body,
        }


# The most a connection holds back (see `TurnWriter`); past it, it writes at once.
HOLD_LIMIT = 64 * 1024


class TurnWriter:
    """A connection's transport as its responses see it: what they write during one turn
    of the event loop goes out together, at the start of the next turn (`call_soon`).

    - The head and the body of a small answer go out in one system call (and one TCP
      segment) instead of two: uvicorn writes the head at `http.response.start` and the
      body at `http.response.body`.
    - The answers the loop made in one turn, on all connections, go out back to back after
      it. A client then wakes once for them, not once for each: answers written one at a
      time between requests woke the load generator for nearly every answer, and each
      wake-up costs the server the kernel's cross-core wake (docs/benchmarks.md, "Answers
      of one turn").

    Bytes and order are the transport's: the protocol calls `flush` before anything it
    writes or closes itself, and when the client half-closes (the transport then closes).
    What a connection holds is bounded (`HOLD_LIMIT`) and counted in
    `get_write_buffer_size`.
    """

    __slots__ = ("_held", "_held_size", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._held_size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if type(data) is not bytes:  # held past the app's `send`: a copy it cannot change
            data = bytes(data)
        held = self._held
        if held is None:
            self._held = held = []
            self._held_size = 0
            self._loop.call_soon(self.flush)
        held.append(data)
        self._held_size += len(data)
        if self._held_size > HOLD_LIMIT:
            self.flush()

    def flush(self) -> None:
        """Write what is held now."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.writelines(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        """The bytes not sent yet: held, and in the transport's buffer."""
        held = self._held_size if self._held is not None else 0
        return held + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
